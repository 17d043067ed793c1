"""Storage tiers: hot -> sealed -> cold (Parquet) and back; one timeline over all of them; faults at every step."""

import hashlib
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import duckdb
import pyarrow as pa
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from pyarrow import parquet

from archival.choices import ArchiveAction, ArchiveState
from archival.models import ArchiveRun, RetentionPolicy
from archival.selectors.retention import retention_plan, table_sizes
from archival.services import tiering
from archival.services.partitions import default_partitions_sweep
from archival.services.retention import retention_apply
from archival.services.tiering import cold_files_verify, partitions_tier
from cameras.choices import AlertKind, AlertState
from cameras.models import Alert
from its_camera.db.snapshot_query import SnapshotQuery, SnapshotQueryUnavailable
from telemetry.choices import StorageTier
from telemetry.models import Detection, PartitionTier
from telemetry.services.batches import frames_decode
from telemetry.services.ingest import frames_ingest
from telemetry.services.partitions import partitions_apply
from telemetry.services.tiering import partitions_seal
from tests.archival.conftest import count_rows, insert_frames, only_policy, partition_names
from tests.archival.storages import BlockingStorage
from tests.archival.test_retention import archive_storage_setting
from tests.cameras.factories import make_camera

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
COLD_DAY = datetime(2026, 11, 10, tzinfo=UTC)  # older than the 7-day cold age at NOW
SEALED_DAY = datetime(2026, 11, 23, tzinfo=UTC)  # past its grace, younger than the cold age
HOT_DAY = datetime(2026, 11, 25, tzinfo=UTC)  # today: hot
KINDS = ["car", "person", "truck", "bicycle", "bus"]


def frames_document(camera, start: datetime, count: int, *, step_seconds: float = 60.0) -> list[dict]:
    """Frames with detections carrying extra keys, NULLs and awkward text, as a sender would send them."""
    frames = []
    for index in range(count):
        detections = [
            {
                "object_type": KINDS[(index + n) % 5],
                "confidence": round(0.3 + ((index * 7 + n) % 70) / 100, 2),
                "bbox": [n * 10.5, 20.25, n * 10.5 + 40, 80.125],
                **({"track_id": index * 10 + n} if n % 2 == 0 else {}),
                **({"plate": {"text": f'AB\t"{index}"\n—é', "score": 0.5}} if n == 1 else {}),
            }
            for n in range(index % 4)
        ]
        frames.append(
            {
                "camera_id": str(camera.id),
                "timestamp": (start + timedelta(seconds=index * step_seconds)).isoformat(),
                "frame_number": index,
                "processing_status": ["completed", "failed", "pending"][index % 3],
                "processing_time_ms": None if index % 5 == 0 else index / 7,
                "quality_score": 0.1 + (index % 9) / 10,
                "detections": detections,
            }
        )
    return frames


def ingest(frames: list[dict]) -> None:
    # Accepted as of the test's own clock (NOW), not the wall clock's: COLD_DAY leaves the 30-day window on 2026-12-10.
    frames_ingest(batch=frames_decode(json.dumps(frames).encode(), now=NOW))


@pytest.fixture
def cameras(db):
    return make_camera(), make_camera()


@pytest.fixture
def tiered_data(policies, cameras):
    """Frames of two cameras on a cold-age day, a sealed-age day and today (partitions for all three); frames
    and detections go cold after 7 days (as seeded by archival 0005; a transactional test's flush loses that)."""
    RetentionPolicy.objects.filter(table__in=["frame_metadata", "detections"]).update(cold_after_days=7)
    partitions_apply(moment=COLD_DAY)
    partitions_apply(moment=NOW)
    for camera in cameras:
        for day in (COLD_DAY, SEALED_DAY, HOT_DAY):
            ingest(frames_document(camera, day + timedelta(hours=9), 120, step_seconds=30))
    return cameras


def seal(table: str, partition: str, start: datetime) -> None:
    """What the seal job records (the job itself runs VACUUM, which a test transaction cannot: see below)."""
    PartitionTier.objects.create(
        table=table, partition=partition, range_start=start, range_end=start + DAY, tier=StorageTier.SEALED
    )


def seal_days(*days: datetime) -> None:
    for day in days:
        for table in ("frame_metadata", "detections"):
            seal(table, f"{table}_p{day:%Y%m%d}", day)


def read_frames(api_client, camera, since: datetime, until: datetime, page_size: int = 50) -> list[dict]:
    """Every page of GET /api/v1/frames for the range, in order."""
    response = api_client.get(
        "/api/v1/frames",
        {"camera_id": str(camera.id), "since": since.isoformat(), "until": until.isoformat(), "page_size": page_size},
    )
    assert response.status_code == 200, response.content
    results = list(response.json()["results"])
    while response.json()["next"]:
        response = api_client.get(response.json()["next"])
        results.extend(response.json()["results"])
    return results


def rows_checksum(table: str, partition: str) -> str:
    """SHA-256 of a partition's rows in id order (every column, text form, UTC)."""
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute(f'SELECT t::text FROM "{partition}" t ORDER BY id')  # noqa: S608 - test helper
        return hashlib.sha256("\n".join(row[0] for row in cursor.fetchall()).encode()).hexdigest()


def tier_now():
    return partitions_tier(now=NOW)


# --- cold tiering and one timeline -----------------------------------------------------------------------------


def test_a_range_reads_the_same_before_and_after_it_goes_cold(tiered_data, api_client, policies):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    since, until = COLD_DAY + timedelta(hours=9, minutes=10), COLD_DAY + timedelta(hours=9, minutes=50)
    before = read_frames(api_client, camera, since, until, page_size=7)

    result = tier_now()

    assert {run.partition for run in result.runs} == {"frame_metadata_p20261110", "detections_p20261110"}
    assert {run.state for run in result.runs} == {ArchiveState.DROPPED}
    assert "frame_metadata_p20261110" not in partition_names("frame_metadata")
    assert "detections_p20261110" not in partition_names("detections")
    cold = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    assert (cold.tier, cold.rows) == (StorageTier.COLD, 240)
    after = read_frames(api_client, camera, since, until, page_size=7)
    assert len(before) == 80
    assert after == before
    assert any(d.get("plate") for frame in after for d in frame["detections"])  # extra keys survive cold


def test_a_range_spanning_hot_sealed_and_cold_reads_as_one_timeline(tiered_data, api_client):
    camera, _ = tiered_data
    seal_days(COLD_DAY, SEALED_DAY)
    since, until = COLD_DAY, NOW + DAY
    before = read_frames(api_client, camera, since, until, page_size=45)

    tier_now()

    tiers = dict(PartitionTier.objects.filter(table="frame_metadata").values_list("partition", "tier"))
    assert tiers == {"frame_metadata_p20261110": StorageTier.COLD, "frame_metadata_p20261123": StorageTier.SEALED}
    after = read_frames(api_client, camera, since, until, page_size=45)
    assert len(after) == 360
    assert after == before
    timestamps = [frame["timestamp"] for frame in after]
    assert timestamps == sorted(timestamps, reverse=True)


def test_a_restored_cold_partition_has_identical_rows(tiered_data):
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    tier_now()

    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)

    after = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    assert after == before
    assert not PartitionTier.objects.filter(partition__in=[name for _, name in TABLE_PARTITIONS]).exists()
    assert ArchiveRun.objects.filter(action=ArchiveAction.RESTORE, state=ArchiveState.RESTORED).count() == 2


TABLE_PARTITIONS = [("frame_metadata", "frame_metadata_p20261110"), ("detections", "detections_p20261110")]


@pytest.mark.parametrize(
    ("in_memory_bytes", "passes"), [(1 << 30, [1, 1]), (0, [2, 2])], ids=["one-pass", "a-pass-per-camera"]
)
def test_a_cold_file_is_zstd_parquet_sorted_by_camera_and_time_with_row_group_statistics(
    tiered_data, archive_root, monkeypatch, in_memory_bytes, passes
):
    """A partition is read as it lies and put in the file's order here (a late row stored after later ones
    included): in one pass when it fits in TIERING_IN_MEMORY_BYTES, else in passes of a range of its cameras."""
    camera, _ = tiered_data
    ingest(frames_document(camera, COLD_DAY + timedelta(hours=8), 3))  # stored last, earlier than the rest
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    monkeypatch.setattr(tiering, "TIERING_IN_MEMORY_BYTES", in_memory_bytes)
    planned = []
    camera_passes = tiering._camera_passes
    monkeypatch.setattr(tiering, "_camera_passes", lambda *args: planned.append(camera_passes(*args)) or planned[-1])
    tier_now()

    assert [len(plan) for plan in planned] == passes
    if in_memory_bytes == 0:  # one camera a pass, in the file's order
        assert all(pass_.first == pass_.last for plan in planned for pass_ in plan)
        assert all(plan[0].first < plan[1].first for plan in planned)

    for _table, name in TABLE_PARTITIONS:
        tier = PartitionTier.objects.get(partition=name)
        metadata = parquet.ParquetFile(archive_root / tier.location).metadata
        rows = parquet.read_table(archive_root / tier.location).to_pylist()
        assert metadata.num_rows == tier.rows == len(rows) > 0
        keys = [(row["camera_id"], row["timestamp"]) for row in rows]
        assert keys == sorted(keys)
        assert len({row["camera_id"] for row in rows}) == 2
        column = metadata.row_group(0).column(metadata.schema.names.index("timestamp"))
        assert column.compression == "ZSTD"
        assert column.statistics.has_min_max
        assert column.statistics.min == min(row["timestamp"] for row in rows)
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


def test_a_cold_file_written_by_duckdb_before_the_streaming_writer_still_verifies_reads_and_restores(
    tiered_data, api_client, archive_root
):
    """Files written before 2026-11-30 came from DuckDB's Parquet writer, sorted by (camera_id, timestamp, id):
    the same columns and types, another encoder. Verify, reads and restore take them as they are."""
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    frames_before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)
    tier_now()
    for _table, name in TABLE_PARTITIONS:
        tier = PartitionTier.objects.get(partition=name)
        path = archive_root / tier.location
        rewritten = path.with_suffix(".duckdb.parquet")
        duckdb.sql(
            f"COPY (SELECT * FROM read_parquet('{path}') ORDER BY camera_id, timestamp, id) TO '{rewritten}' "  # noqa: S608
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        rewritten.replace(path)
        data = path.read_bytes()
        PartitionTier.objects.filter(pk=tier.pk).update(bytes=len(data), checksum=hashlib.sha256(data).hexdigest())

    call_command("archive", "verify", "--cold")  # the content checksum is the same: same rows
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == frames_before
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


def test_late_rows_for_a_cold_range_are_accepted_and_merged_into_its_file(tiered_data, api_client):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    late = frames_document(camera, COLD_DAY + timedelta(hours=20), 5)

    ingest(late)  # no partition for that day any more: the rows wait in the DEFAULT partition
    readable_at_once = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)
    default_partitions_sweep(now=NOW)  # gives them a partition of their own
    tier_now()  # the range is cold, so its new partition is merged into the file once its grace has passed

    assert len(readable_at_once) == 125
    assert "frame_metadata_p20261110" not in partition_names("frame_metadata")
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").rows == 245
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == readable_at_once


def export_frames(api_client, camera, since: datetime, until: datetime) -> list[dict]:
    response = api_client.get(
        "/api/v1/frames/export", {"camera_id": str(camera.id), "since": since.isoformat(), "until": until.isoformat()}
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def same_frames(exported: list[dict], paged: list[dict]) -> bool:
    """The export (oldest first, microsecond timestamps) and the frames API's pages (newest first) hold the same
    frames with the same detections."""

    def normal(frame: dict) -> dict:
        return {**frame, "timestamp": datetime.fromisoformat(frame["timestamp"].replace("Z", "+00:00"))}

    return [normal(frame) for frame in exported] == [normal(frame) for frame in reversed(paged)]


def test_a_camera_hour_exports_the_same_lines_before_and_after_it_goes_cold(tiered_data, api_client):
    camera, _ = tiered_data
    odd = frames_document(camera, COLD_DAY + timedelta(hours=9, seconds=1), 1)
    odd[0]["detections"] = [
        {"object_type": "Car", "confidence": 0.5, "bbox": [1, 2, 3, 4], "track_id": None, "extra": [None, 1.5]},
        {"object_type": "bus", "confidence": 1, "bbox": [0.1, 0.2, 10.5, 12345.678], "track_id": 7},
    ]
    ingest(odd)
    seal_days(COLD_DAY)
    since, until = COLD_DAY + timedelta(hours=9), COLD_DAY + timedelta(hours=10)
    before = export_frames(api_client, camera, since, until)

    tier_now()

    assert export_frames(api_client, camera, since, until) == before
    assert len(before) == 121
    assert before[1]["detections"] == [
        {"object_type": "Car", "confidence": 0.5, "bbox": [1.0, 2.0, 3.0, 4.0], "track_id": None, "extra": [None, 1.5]},
        {"object_type": "bus", "confidence": 1.0, "bbox": [0.1, 0.2, 10.5, 12345.678], "track_id": 7},
    ]
    assert sum(len(frame["detections"]) for frame in before) > 0
    assert any("plate" in detection for frame in before for detection in frame["detections"])
    assert same_frames(before, read_frames(api_client, camera, since, until))


def test_exports_of_a_cold_a_sealed_and_a_hot_day_read_as_the_frames_api_reads_the_whole_span(tiered_data, api_client):
    camera, _ = tiered_data
    seal_days(COLD_DAY, SEALED_DAY)
    tier_now()

    exported = [
        frame for day in (COLD_DAY, SEALED_DAY, HOT_DAY) for frame in export_frames(api_client, camera, day, day + DAY)
    ]

    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.COLD
    assert PartitionTier.objects.get(partition="frame_metadata_p20261123").tier == StorageTier.SEALED
    assert len(exported) == 360
    assert same_frames(exported, read_frames(api_client, camera, COLD_DAY, HOT_DAY + DAY, page_size=100))


def export_arrow(api_client, camera, since: datetime, until: datetime) -> pa.Table:
    response = api_client.get(
        "/api/v1/frames/export",
        {"camera_id": str(camera.id), "since": since.isoformat(), "until": until.isoformat(), "format": "arrow"},
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/vnd.apache.arrow.stream"
    return pa.ipc.open_stream(b"".join(response.streaming_content)).read_all()


def arrow_documents(table: pa.Table) -> list[dict]:
    """The frames API's documents of the Arrow export's rows: each detection's normalized fields, `track_id` when
    set, and the attributes the sender added merged in (an `object_type` sent in another case among them)."""
    documents = []
    for row in table.to_pylist():
        detections = [
            {
                "object_type": detection["object_type"],
                "confidence": detection["confidence"],
                "bbox": detection["bbox"],
                **({} if detection["track_id"] is None else {"track_id": detection["track_id"]}),
                **json.loads(detection["attributes"] or "{}"),
            }
            for detection in row.pop("detections")
        ]
        documents.append({**row, "timestamp": row["timestamp"].isoformat(), "detections": detections})
    return documents


def test_a_camera_hour_exports_the_same_arrow_rows_before_and_after_it_goes_cold(tiered_data, api_client):
    camera, _ = tiered_data
    odd = frames_document(camera, COLD_DAY + timedelta(hours=9, seconds=1), 1)
    odd[0]["detections"] = [
        {"object_type": "Car", "confidence": 0.5, "bbox": [1, 2, 3, 4], "track_id": None, "extra": [None, 1.5]},
        {"object_type": "bus", "confidence": 1, "bbox": [0.1, 0.2, 10.5, 12345.678], "track_id": 7},
    ]
    ingest(odd)
    seal_days(COLD_DAY)
    since, until = COLD_DAY + timedelta(hours=9), COLD_DAY + timedelta(hours=10)
    before = export_arrow(api_client, camera, since, until)

    tier_now()

    after = export_arrow(api_client, camera, since, until)
    assert after.schema == before.schema
    assert after.to_pylist() == before.to_pylist()
    assert before.num_rows == 121
    assert before["detections"][1].as_py() == [
        {"object_type": "car", "confidence": 0.5, "bbox": [1.0, 2.0, 3.0, 4.0], "track_id": None,
         "attributes": '{"extra": [null, 1.5], "track_id": null, "object_type": "Car"}'},
        {"object_type": "bus", "confidence": 1.0, "bbox": [0.1, 0.2, 10.5, 12345.678], "track_id": 7,
         "attributes": None},
    ]  # fmt: skip
    assert same_frames(arrow_documents(before), read_frames(api_client, camera, since, until))
    assert arrow_documents(after) == [  # the NDJSON lines, their timestamps read
        {**line, "timestamp": datetime.fromisoformat(line["timestamp"]).isoformat()}
        for line in export_frames(api_client, camera, since, until)
    ]


def test_arrow_exports_of_a_cold_a_sealed_and_a_hot_day_read_as_the_frames_api_reads_the_whole_span(
    tiered_data, api_client
):
    camera, _ = tiered_data
    seal_days(COLD_DAY, SEALED_DAY)
    tier_now()

    exported = [
        frame
        for day in (COLD_DAY, SEALED_DAY, HOT_DAY)
        for frame in arrow_documents(export_arrow(api_client, camera, day, day + DAY))
    ]

    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.COLD
    assert PartitionTier.objects.get(partition="frame_metadata_p20261123").tier == StorageTier.SEALED
    assert len(exported) == 360
    assert same_frames(exported, read_frames(api_client, camera, COLD_DAY, HOT_DAY + DAY, page_size=100))


@pytest.mark.parametrize("tier", ["hot", "cold"])
def test_an_export_gives_each_frame_its_own_detections_and_leaves_out_a_detection_without_a_frame(
    tiered_data, api_client, tier
):
    camera, other = tiered_data
    start = COLD_DAY + timedelta(hours=12)
    frames = frames_document(camera, start, 5, step_seconds=1)  # 0, 1, 2, 3, 0 detections
    frames[2]["detections"] = []
    ingest(frames)
    # Detections without a frame at their timestamp (ingest writes detections only with their frame; these are
    # written by hand): before the first frame, between two, after the last, and one at a frame's timestamp of
    # another camera.
    for moment, owner in [(-0.5, camera), (1.5, camera), (9, camera), (1, other)]:
        Detection.objects.create(
            camera=owner, timestamp=start + timedelta(seconds=moment), object_type="car", confidence=0.5,
            bbox_x1=1, bbox_y1=2, bbox_x2=3, bbox_y2=4,
        )  # fmt: skip
    if tier == "cold":
        seal_days(COLD_DAY)
        tier_now()
    since, until = start - timedelta(seconds=1), start + timedelta(seconds=10)

    lines = export_frames(api_client, camera, since, until)
    arrow = arrow_documents(export_arrow(api_client, camera, since, until))

    assert PartitionTier.objects.filter(partition="detections_p20261110", tier=StorageTier.COLD).exists() == (
        tier == "cold"
    )
    assert [len(frame["detections"]) for frame in lines] == [0, 1, 0, 3, 0]
    assert [len(frame["detections"]) for frame in arrow] == [0, 1, 0, 3, 0]
    assert lines[3]["detections"] == frames[3]["detections"]
    assert same_frames(lines, read_frames(api_client, camera, since, until))
    assert same_frames(arrow, read_frames(api_client, camera, since, until))


def test_an_arrow_export_of_a_range_without_frames_is_a_stream_of_no_rows(tiered_data, api_client):
    camera, _ = tiered_data

    table = export_arrow(api_client, camera, COLD_DAY, COLD_DAY + timedelta(hours=9))

    assert table.num_rows == 0
    assert table.schema.names[-1] == "detections"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"since": "2026-11-10T09:00:00+00:00", "until": "2026-11-12T09:00:00+00:00"}, "at most 24 hours"),
        ({"since": "2026-11-10T10:00:00+00:00", "until": "2026-11-10T09:00:00+00:00"}, "since must be before"),
        ({"since": "2026-11-10T09:00:00", "until": "2026-11-10T10:00:00+00:00"}, "time zone"),
        (
            {"since": "2026-11-10T09:00:00+00:00", "until": "2026-11-10T10:00:00+00:00", "format": "parquet"},
            "'ndjson' or 'arrow'",
        ),
    ],
)
def test_an_export_with_a_bad_range_is_a_422(tiered_data, api_client, query, detail):
    camera, _ = tiered_data
    response = api_client.get("/api/v1/frames/export", {"camera_id": str(camera.id), **query})
    assert response.status_code == 422
    assert detail in json.dumps(response.json()["detail"])


@pytest.mark.parametrize("export_format", ["ndjson", "arrow"])
def test_an_export_needing_a_missing_cold_file_is_a_503_naming_it(tiered_data, api_client, archive_root, export_format):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    (archive_root / PartitionTier.objects.get(partition="detections_p20261110").location).unlink()

    response = api_client.get(
        "/api/v1/frames/export",
        {
            "camera_id": str(camera.id),
            "since": COLD_DAY.isoformat(),
            "until": (COLD_DAY + DAY).isoformat(),
            "format": export_format,
        },
    )

    assert response.status_code == 503
    assert response.json()["detail"]["partitions"] == ["detections_p20261110"]


# --- faults ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["FullDiskStorage", "TruncatingStorage", "CorruptingStorage"])
def test_a_storage_failing_mid_write_leaves_every_row_in_postgresql(
    tiered_data, settings, tmp_path, api_client, backend
):
    camera, _ = tiered_data
    settings.STORAGES = archive_storage_setting(f"tests.archival.storages.{backend}", str(tmp_path / "bad"))
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)

    result = tier_now()

    assert [run.state for run in result.runs] == [ArchiveState.FAILED]
    assert count_rows("frame_metadata_p20261110") == 240
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.SEALED
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before
    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject="frame_metadata_retention: cold tiering")
    assert alert.state == AlertState.OPEN


@pytest.mark.parametrize("step", ["cold_file_verify", "partition_tier_cold", "_detach_and_drop"])
def test_a_crash_at_any_step_leaves_rows_in_exactly_one_tier_and_the_next_run_completes(
    tiered_data, api_client, monkeypatch, step
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)

    def worker_killed(*args, **kwargs):
        raise SystemError(f"worker lost at {step}")

    monkeypatch.setattr(tiering, step, worker_killed)
    failed = tier_now()

    assert [run.state for run in failed.runs] == [ArchiveState.FAILED]
    assert count_rows("frame_metadata_p20261110") == 240
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.SEALED
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before  # once, not twice

    monkeypatch.undo()
    done = tier_now()

    assert {run.state for run in done.runs} == {ArchiveState.DROPPED}
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before
    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject="frame_metadata_retention: cold tiering")
    assert alert.state == AlertState.RESOLVED


@pytest.mark.django_db(transaction=True)
def test_a_tiering_run_writes_the_tables_side_by_side_in_sessions_of_their_own(tiered_data, api_client):
    """Outside a transaction the job tiers frames and detections in two threads, each in its own session."""
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    frames_before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)

    result = tier_now()

    assert sorted(run.partition for run in result.runs if run.state == ArchiveState.DROPPED) == sorted(
        name for _, name in TABLE_PARTITIONS
    )
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == frames_before
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


# --- how a partition is read: ADBC through the transaction's snapshot, or COPY as CSV ---------------------------


@pytest.fixture
def adbc_reads(monkeypatch):
    """The statements read through ADBC on a second connection (SnapshotQuery), as they ran."""
    statements: list[str] = []
    batches = SnapshotQuery.batches

    def counted(self):
        statements.append(self._text(self.statement))
        yield from batches(self)

    monkeypatch.setattr(SnapshotQuery, "batches", counted)
    return statements


@pytest.mark.django_db(transaction=True)
def test_adbc_and_csv_reads_of_a_partition_give_the_same_cold_rows(tiered_data, settings, adbc_reads):
    """Outside any transaction a partition is read by ADBC on a second connection sharing the tiering
    transaction's snapshot; read as CSV in the transaction instead (ARCHIVE_COLD_READER="csv"), the same rows
    give the same content checksum, row count and restored rows."""
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}

    through_adbc = {run.partition: run for run in tier_now().runs}
    assert len(adbc_reads) == 2
    assert all(run.state == ArchiveState.DROPPED for run in through_adbc.values())
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    seal_days(COLD_DAY)
    settings.ARCHIVE_COLD_READER = "csv"
    as_csv = {run.partition: run for run in tier_now().runs}

    assert len(adbc_reads) == 2  # the second run did not use ADBC
    for _table, name in TABLE_PARTITIONS:
        assert as_csv[name].state == ArchiveState.DROPPED
        assert (as_csv[name].rows, as_csv[name].content_checksum) == (
            through_adbc[name].rows,
            through_adbc[name].content_checksum,
        )
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


@pytest.mark.django_db(transaction=True)
def test_a_partition_read_through_adbc_in_passes_by_camera_gives_the_rows_of_one_pass(
    tiered_data, monkeypatch, adbc_reads
):
    """A partition bigger than TIERING_IN_MEMORY_BYTES is read in passes, each a range of its cameras on the
    shared snapshot: the same file rows and content checksum as one pass, and the rows restore identical."""
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}
    in_one_pass = {run.partition: (run.state, run.rows, run.content_checksum) for run in tier_now().runs}
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    seal_days(COLD_DAY)
    monkeypatch.setattr(tiering, "TIERING_IN_MEMORY_BYTES", 0)

    in_passes = {run.partition: (run.state, run.rows, run.content_checksum) for run in tier_now().runs}

    # one read a table, then one a camera (two) a table, each of its camera's rows only
    assert sorted("camera_id BETWEEN" in statement for statement in adbc_reads) == [False] * 2 + [True] * 4
    assert in_passes == in_one_pass
    assert {state for state, _, _ in in_passes.values()} == {ArchiveState.DROPPED}
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


def test_inside_a_callers_transaction_the_partition_is_read_in_that_transaction(tiered_data, adbc_reads):
    """A second session would not see rows the caller's transaction wrote and has not committed (here: every
    row of the test), so a tiering inside a transaction reads by COPY in it."""
    seal_days(COLD_DAY)
    uncommitted = {name: count_rows(name) for _table, name in TABLE_PARTITIONS}

    result = tier_now()

    assert adbc_reads == []
    assert {run.partition: (run.state, run.rows) for run in result.runs} == {
        name: (ArchiveState.DROPPED, rows) for name, rows in uncommitted.items()
    }


@pytest.mark.django_db(transaction=True)
def test_a_batch_failing_to_convert_stops_the_adbc_read_and_leaves_the_partition(tiered_data, api_client, monkeypatch):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)

    def unconvertible(self, batch):
        raise ValueError("bad batch")

    monkeypatch.setattr(tiering._ColdLayout, "converted", unconvertible)
    failed = tier_now()

    assert [run.state for run in failed.runs] == [ArchiveState.FAILED]
    assert "bad batch" in failed.runs[0].error
    assert count_rows("frame_metadata_p20261110") == 240
    monkeypatch.undo()
    assert {run.state for run in tier_now().runs} == {ArchiveState.DROPPED}
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before


@pytest.mark.django_db(transaction=True)
def test_when_the_second_connection_cannot_be_had_the_partition_is_read_as_csv(tiered_data, monkeypatch, caplog):
    seal_days(COLD_DAY)
    before = {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS}

    def refused(self):
        raise SnapshotQueryUnavailable("ADBC could not connect: refused")

    monkeypatch.setattr(SnapshotQuery, "__enter__", refused)
    result = tier_now()

    assert {run.state for run in result.runs} == {ArchiveState.DROPPED}
    assert "as CSV instead of through ADBC: ADBC could not connect: refused" in caplog.text
    for _table, name in TABLE_PARTITIONS:
        call_command("archive", "restore", "--cold", name)
    assert {name: rows_checksum(table, name) for table, name in TABLE_PARTITIONS} == before


def test_a_writer_failing_mid_copy_stops_the_copy_and_leaves_the_partition(tiered_data, api_client, monkeypatch):
    """The rows are parsed and written while PostgreSQL still sends them: a failure there cancels the COPY, the
    transaction rolls back, and the next run starts over."""
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)
    monkeypatch.setattr(tiering, "COPY_CHUNK_BYTES", 1_000)  # many chunks, so the failure comes mid-COPY

    def unparsable(self, chunk):
        raise ValueError("bad row")

    monkeypatch.setattr(tiering._ColdLayout, "parsed", unparsable)
    failed = tier_now()

    assert [run.state for run in failed.runs] == [ArchiveState.FAILED]
    assert "bad row" in failed.runs[0].error
    assert count_rows("frame_metadata_p20261110") == 240
    monkeypatch.undo()
    assert {run.state for run in tier_now().runs} == {ArchiveState.DROPPED}
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before


@pytest.mark.django_db(transaction=True)
def test_two_tiering_runs_at_once_do_no_double_work(tiered_data, settings, tmp_path):
    settings.STORAGES = archive_storage_setting("tests.archival.storages.BlockingStorage", str(tmp_path / "blocking"))
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    BlockingStorage.entered.clear()
    BlockingStorage.release.clear()
    outcomes: dict[str, object] = {}

    def run(label: str) -> None:
        try:
            outcomes[label] = tier_now()
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert BlockingStorage.entered.wait(timeout=30), "the first run never reached the save"
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(timeout=30)
    BlockingStorage.release.set()
    first.join(timeout=60)

    assert outcomes["second"] is None
    assert ArchiveRun.objects.filter(action=ArchiveAction.TIER, partition="frame_metadata_p20261110").count() == 1
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.COLD


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_cold_file_is_found_alerted_and_never_silently_missing(
    tiered_data, api_client, archive_root, damage
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    cold = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    path = archive_root / cold.location
    if damage == "missing":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    with pytest.raises(CommandError, match="frame_metadata_p20261110"):
        call_command("archive", "verify", "--cold")

    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject="cold file frame_metadata_p20261110")
    assert alert.state == AlertState.OPEN
    assert "240 row(s)" in alert.message
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").verify_error
    response = api_client.get(
        "/api/v1/frames",
        {"camera_id": str(camera.id), "since": COLD_DAY.isoformat(), "until": (COLD_DAY + DAY).isoformat()},
    )
    if damage == "missing":
        assert response.status_code == 503
        assert response.json()["detail"]["partitions"] == ["frame_metadata_p20261110"]
    else:
        # A flipped byte in a data page is caught by verify; reads either fail the same way or, when DuckDB
        # can still decode the page, return rows (verify is what proves a file intact).
        assert response.status_code in (200, 503)
    assert cold_files_verify(now=NOW)[0].partition == "frame_metadata_p20261110"


# --- sealing (VACUUM and CREATE INDEX CONCURRENTLY cannot run in a test transaction) -----------------------------


@pytest.mark.django_db(transaction=True)
def test_the_seal_job_seals_partitions_past_their_grace_with_their_read_indexes(tiered_data, settings):
    settings.TELEMETRY_SEALED_INDEXES = {"detections": ["type_confidence"], "frame_metadata": [], "system_metrics": []}

    sealed = partitions_seal(now=NOW, limit=100)

    names = {result.partition for result in sealed}
    assert {"frame_metadata_p20261123", "detections_p20261124", "detections_p20261110"} <= names
    assert "frame_metadata_p20261125" not in names  # today: hot
    tier = PartitionTier.objects.get(partition="detections_p20261123")
    assert tier.tier == StorageTier.SEALED
    assert tier.sealed_indexes == ["detections_p20261123_type_confidence"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid WHERE relname = %s",
            ["detections_p20261123_type_confidence"],
        )
        assert cursor.fetchone() == (True,)
        cursor.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'detections_p20261123'"
        )
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'detections_p20261125_type_confidence'")
        assert cursor.fetchone() == (0,)  # hot partitions do not pay for it
    assert partitions_seal(now=NOW, limit=100) == []  # nothing left to do


# --- every API query uses an index on hot and sealed partitions ----------------------------------------------


def plan_of(query: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask whether an index *can* serve it
        cursor.execute("EXPLAIN " + query, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("day", [HOT_DAY, SEALED_DAY])
def test_the_api_queries_use_an_index_on_hot_and_sealed_partitions(tiered_data, day):
    from telemetry.models import Detection, FrameMetadata

    camera, _ = tiered_data
    seal_days(SEALED_DAY)
    since, until = day + timedelta(hours=9), day + timedelta(hours=10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE frame_metadata")
        cursor.execute("ANALYZE detections")
    frames = FrameMetadata.objects.filter(camera_id=camera.id, timestamp__gte=since, timestamp__lt=until)
    queries = {
        "frames page": frames.order_by("-timestamp", "-id")[:51],
        "failed frames page": frames.filter(processing_status="failed").order_by("-timestamp", "-id")[:51],
        "a page's detections": Detection.objects.filter(
            camera_id=camera.id, timestamp__in=[since, since + timedelta(seconds=30)]
        ).order_by("timestamp", "id"),
    }
    for name, queryset in queries.items():
        query, params = queryset.query.sql_with_params()
        plan = plan_of(query, list(params))
        assert f"p{day:%Y%m%d}" in plan, (name, plan)
        assert "Index" in plan, (name, plan)
        assert "Seq Scan" not in plan, (name, plan)


# --- retention counts every tier ---------------------------------------------------------------------------------


def test_retention_deletes_cold_files_past_keep_for_and_counts_them_in_the_size_cap(tiered_data, archive_root):
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    tier_now()
    cold = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    policy = RetentionPolicy.objects.get(table="frame_metadata")
    attached_bytes = table_sizes()["frame_metadata"]
    plan = retention_plan(now=NOW, policies=[policy], limit=8)[0]
    assert plan.table_bytes == attached_bytes + cold.bytes  # the cap sees every tier
    assert plan.actions == []  # nothing past keep-for, no cap

    policy.size_cap_bytes = 1  # over the cap: the oldest ranges go first, whatever their tier
    policy.save()
    planned = retention_plan(now=NOW, policies=[policy], limit=8)[0].actions
    assert [(a.partition, a.action) for a in planned[:3]] == [
        ("frame_metadata_p20261109", ArchiveAction.EXPORT),
        ("frame_metadata_p20261110", ArchiveAction.DELETE_COLD),
        ("frame_metadata_p20261111", ArchiveAction.EXPORT),
    ]
    runs = retention_apply(now=NOW).runs

    assert (ArchiveAction.DELETE_COLD, "frame_metadata_p20261110", ArchiveState.DROPPED) in [
        (run.action, run.partition, run.state) for run in runs
    ]
    assert not (archive_root / cold.location).exists()
    assert not PartitionTier.objects.filter(partition="frame_metadata_p20261110").exists()


def test_retention_deletes_a_cold_file_once_its_range_is_past_keep_for(tiered_data, archive_root):
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    tier_now()
    cold = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    later = COLD_DAY + timedelta(days=200)  # frames keep 6 months

    runs = retention_apply(now=later).runs

    deleted = [run for run in runs if run.action == ArchiveAction.DELETE_COLD]
    assert [(run.partition, run.state, run.rows) for run in deleted] == [
        ("frame_metadata_p20261110", ArchiveState.DROPPED, 240)
    ]
    assert not (archive_root / cold.location).exists()


# --- seen: partition health (API, admin) and /metrics ------------------------------------------------------------


@pytest.fixture
def clock_at_now(monkeypatch):
    """Views read `timezone.now()`: pin it to the data's NOW, so the ingest rate (the last 7 days' partitions) and
    the coverage ahead are the same whatever the wall clock says."""
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)


def test_partition_health_shows_every_tier_its_bytes_and_the_days_until_the_size_cap(
    tiered_data, api_client, admin_client, clock_at_now
):
    from django.urls import reverse

    seal_days(COLD_DAY, SEALED_DAY)
    PartitionTier.objects.filter(partition="frame_metadata_p20261123").update(hot_bytes=10**9)
    tier_now()
    RetentionPolicy.objects.filter(table="frame_metadata").update(size_cap_bytes=10**12)

    body = api_client.get("/api/v1/partitions", {"table": "frame_metadata", "details": "true"}).json()

    frames = body["tables"][0]
    by_tier = {tier["tier"]: tier for tier in frames["tiers"]}
    cold = by_tier["cold"]
    assert (cold["partitions"], cold["rows"]) == (1, 240)
    assert cold["bytes"] == PartitionTier.objects.get(partition="frame_metadata_p20261110").bytes > 0
    assert by_tier["sealed"]["partitions"] == 1
    assert by_tier["hot"]["partitions"] > 1
    assert frames["bytes_all_tiers"] == sum(tier["bytes"] for tier in frames["tiers"])
    assert frames["cold_after_days"] == 7
    assert frames["ingest_bytes_per_day"] > 0
    assert frames["days_until_size_cap"] == pytest.approx(
        (10**12 - frames["bytes_all_tiers"]) / frames["ingest_bytes_per_day"]
    )
    sealed = next(p for p in frames["tier_partitions"] if p["name"] == "frame_metadata_p20261123")
    assert sealed["tier"] == "sealed"
    assert sealed["ratio_to_hot"] == pytest.approx(sealed["bytes"] / 10**9)
    assert set(body["bytes_per_frame"]) == {"hot", "sealed", "cold"}
    assert body["bytes_per_frame"]["cold"] > 0

    page = admin_client.get(reverse("admin:archival_partitionhealth_changelist")).content.decode()
    assert "Storage tiers" in page
    assert "frame_metadata_p20261110" in page
    browser = admin_client.get(reverse("admin:telemetry_framemetadatarecord_changelist")).content.decode()
    assert "1 cold partition(s) of frame_metadata, 2026-11-10 to 2026-11-11" in browser  # not silently missing


def test_metrics_carry_the_bytes_of_each_table_by_tier(tiered_data, client, clock_at_now):
    # A scrape of its own: on Citus, a transaction that read the admin's browsers cannot then read the live status
    # view (Citus's local execution), and a real scrape is a request, its own transaction (docs/scaling.md).
    seal_days(COLD_DAY, SEALED_DAY)
    tier_now()
    cold = PartitionTier.objects.get(partition="frame_metadata_p20261110")

    scrape = client.get("/metrics").content.decode()

    assert cold.tier == StorageTier.COLD
    assert f'its_storage_bytes{{table="frame_metadata",tier="cold"}} {float(cold.bytes)}' in scrape


class TableCells(HTMLParser):
    """The text of each row's cells in the HTML table with the given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag == "td" and self.cell is not None:
            self.rows[-1].append(" ".join(self.cell.split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data


def table_cells(html: str, table_id: str) -> list[list[str]]:
    parser = TableCells(table_id)
    parser.feed(html)
    return [row for row in parser.rows if row]


def test_the_admin_page_and_the_api_show_the_same_partition_health(tiered_data, api_client, admin_client, clock_at_now):
    from django.template.defaultfilters import date, floatformat
    from django.urls import reverse

    from archival.admin import _size

    # Given every tier in use, a size cap, a DEFAULT partition with rows, and one fixed clock for both readers (NOW)
    seal_days(COLD_DAY, SEALED_DAY)
    PartitionTier.objects.filter(partition="frame_metadata_p20261123").update(hot_bytes=10**9)
    tier_now()
    RetentionPolicy.objects.filter(table="frame_metadata").update(size_cap_bytes=10**9)
    insert_frames(datetime(2001, 1, 1, tzinfo=UTC), 3)  # lands in DEFAULT

    # When both are read
    body = api_client.get("/api/v1/partitions").json()
    page = admin_client.get(reverse("admin:archival_partitionhealth_changelist")).content.decode()

    # Then every figure of the summary is the same
    def when(value: str | None, fmt: str) -> str | None:
        return date(datetime.fromisoformat(value), fmt) if value else None

    def estimate(rows: int | None) -> str:
        return "?" if rows is None else str(rows)

    expected_summary = [
        [
            t["table"],
            t["partition_size"],
            str(t["partition_count"]),
            _size(t["total_bytes"]),
            f"{round(t['total_bytes'] / t['size_cap_bytes'] * 100)}% of {_size(t['size_cap_bytes'])}"
            if t["size_cap_bytes"]
            else "—",
            f"has rows (~{estimate(t['default_partition_estimated_rows'])})"
            if t["default_partition_has_rows"]
            else "empty",
            when(t["covered_until"], "Y-m-d H:i") or "current period missing",
            f"{t['periods_ahead']} / {t['wanted_ahead']}",
            when(t["next_missing"], "Y-m-d"),
            when(t["retention_cutoff"], "Y-m-d H:i") or "no enabled policy",
        ]
        for t in body["tables"]
    ]
    assert table_cells(page, "partition-summary") == expected_summary
    frames = next(t for t in body["tables"] if t["table"] == "frame_metadata")
    assert frames["default_partition_has_rows"]  # the cases worth comparing are there
    assert frames["days_until_size_cap"] is not None

    # And every tier's: partitions, size, rows, bytes per row, ratio to hot; and the projection to the cap
    def tier_rows(t: dict) -> list[list[str]]:
        rows = [
            [
                t["table"] if index == 0 else "",
                tier["tier"],
                str(tier["partitions"]),
                _size(tier["bytes"]),
                str(tier["rows"]),
                floatformat(tier["bytes_per_row"], 0) or "—",
                floatformat(tier["ratio_to_hot"], 2) or "—",
            ]
            for index, tier in enumerate(t["tiers"])
        ]
        cap = f" of a {_size(t['size_cap_bytes'])} cap" if t["size_cap_bytes"] else ""
        rate = _size(int(t["ingest_bytes_per_day"])) if t["ingest_bytes_per_day"] else "?"
        days = t["days_until_size_cap"]
        until = (
            f"{floatformat(days, 1)} days until the cap at this rate"
            if days is not None
            else "no cap or no recent ingest"
        )
        cold = t["cold_after_days"] or "never"
        projection = (
            f"all tiers {_size(t['bytes_all_tiers'])}{cap}; ingest {rate} a day; {until}; cold after {cold} day(s)"
        )
        return [*rows, ["", projection]]

    assert table_cells(page, "tier-summary") == [row for t in body["tables"] for row in tier_rows(t)]
    # And what a frame with its detections costs in each tier
    costs = " · ".join(
        f"{tier} {f'{floatformat(value, 0)} B' if value else '—'}" for tier, value in body["bytes_per_frame"].items()
    )
    assert f"A frame with its detections costs: {costs}." in " ".join(re.sub(r"<[^>]+>", "", page).split())


def test_rollups_rebuild_gives_the_same_rollups_for_a_range_before_and_after_it_went_cold(tiered_data):
    from telemetry.models import DetectionHourlyRollup, FrameDailyRollup, FrameHourlyRollup
    from telemetry.services.rollups import rollups_rebuild

    seal_days(COLD_DAY)
    since, until = COLD_DAY, COLD_DAY + DAY

    def rollups() -> dict:
        fields = ("scope", "scope_id", "bucket")
        return {
            "frames": sorted(FrameHourlyRollup.objects.values_list(*fields, "frames", "failed_frames", "detections",
                                                                   "processing_time_sum", "processing_time_p95")),
            "days": sorted(FrameDailyRollup.objects.values_list(*fields, "frames", "detections")),
            "detections": sorted(DetectionHourlyRollup.objects.values_list(*fields, "object_type", "detections",
                                                                           "confidence_sum")),
        }  # fmt: skip

    rollups_rebuild(since=since, until=until)
    before = rollups()
    tier_now()

    rollups_rebuild(since=since, until=until)

    assert "frame_metadata_p20261110" not in partition_names("frame_metadata")
    assert before["frames"]  # there was something to compare
    after = rollups()
    # Same rows, same counts; float sums are added in the order the rows are read, so they may differ in the
    # last bit (docs/storage.md): compared to 1e-12.
    for name in before:
        assert len(after[name]) == len(before[name])
        for now_row, then_row in zip(after[name], before[name], strict=True):
            for now_value, then_value in zip(now_row, then_row, strict=True):
                if isinstance(then_value, float):
                    assert now_value == pytest.approx(then_value, rel=1e-12)
                else:
                    assert now_value == then_value


KILLED_WORKER = """
import os, signal, sys
import django
django.setup()
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]
from datetime import datetime
from archival.services import tiering
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(tiering, sys.argv[2], killed)
tiering.partitions_tier(now=datetime.fromisoformat(sys.argv[3]))
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["cold_file_verify", "_detach_and_drop"])
def test_a_worker_killed_between_steps_leaves_every_row_readable_once(tiered_data, api_client, archive_root, step):
    import os
    import signal
    import subprocess
    import sys

    from django.conf import settings as django_settings

    camera, _ = tiered_data
    seal_days(COLD_DAY)
    only_policy("frame_metadata")
    before = read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, connection.settings_dict["NAME"], step, NOW.isoformat()],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "ARCHIVE_ROOT": str(archive_root)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert count_rows("frame_metadata_p20261110") == 240
    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == StorageTier.SEALED
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before
    result = tier_now()
    assert result.interrupted == 1
    assert [run.state for run in result.runs] == [ArchiveState.DROPPED]
    assert read_frames(api_client, camera, COLD_DAY, COLD_DAY + DAY) == before
