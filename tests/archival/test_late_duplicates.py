"""A late row that repeats a row already stored is refused the same whichever tier holds the first one: a frame is a
409 with PostgreSQL's own detail, a metric sample is counted as a duplicate; nothing of the batch is written, and the
tiering never merges a duplicate into a cold file."""

import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from archival.choices import ArchiveState
from archival.models import ArchiveRun, RetentionPolicy
from archival.services.partitions import default_partitions_sweep
from cameras.choices import AlertKind, AlertState
from cameras.models import Alert
from telemetry.models import PartitionTier
from telemetry.selectors import cold
from telemetry.selectors.cold import late_rows_repeating_cold
from telemetry.services.batches import metrics_decode
from telemetry.services.ingest import metrics_ingest
from telemetry.services.partitions import partitions_apply
from telemetry.services.tiering import late_rows_repeating_cold_delete
from tests.archival.conftest import count_rows, partition_names
from tests.archival.test_tiering import (
    COLD_DAY,
    DAY,
    HOT_DAY,
    NOW,
    frames_document,
    ingest,
    seal_days,
    tier_now,
)

pytestmark = pytest.mark.django_db

MICROSECOND = timedelta(microseconds=1)
FRACTIONAL = COLD_DAY + timedelta(hours=10, microseconds=250_000)  # PostgreSQL writes it '… 10:00:00.25+00'


@pytest.fixture
def accept_any_past(settings):
    """The API's acceptance window follows the wall clock: widened, so the fixed days of these tests stay late rows
    the API accepts whatever day the suite runs."""
    settings.TELEMETRY_ACCEPT_PAST_DAYS = 3650


def stored_rows() -> dict[str, int]:
    """Rows in PostgreSQL and in cold files, per table."""
    cold_rows = dict(PartitionTier.objects.filter(tier="cold").values_list("table", "rows"))
    return {
        table: count_rows(table) + (cold_rows.get(table) or 0)
        for table in ("frame_metadata", "detections", "system_metrics")
    }


def late_batch(camera, original: dict) -> list[dict]:
    """A new late frame, then one repeating `original`'s camera and timestamp (other values, more detections)."""
    new = frames_document(camera, COLD_DAY + timedelta(hours=21), 1)[0]
    repeat = {**frames_document(camera, COLD_DAY, 4)[3], "timestamp": original["timestamp"], "frame_number": 99}
    return [new, repeat]


@pytest.mark.parametrize("timestamp", ["whole second", "fractional"])
def test_a_late_frame_repeating_a_cold_frame_is_the_same_409_as_on_an_attached_partition(
    tiered_data, api_client, accept_any_past, timestamp
):
    camera, _ = tiered_data
    original = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    if timestamp == "fractional":
        original = {**frames_document(camera, FRACTIONAL, 1)[0]}
        ingest([original])
    seal_days(COLD_DAY)
    batch = late_batch(camera, original)
    sealed_answer = api_client.post_json("/api/v1/frames", batch)
    before = stored_rows()

    tier_now()

    assert PartitionTier.objects.get(partition="frame_metadata_p20261110").tier == "cold"
    cold_answer = api_client.post_json("/api/v1/frames", batch)
    assert sealed_answer.status_code == cold_answer.status_code == 409
    assert cold_answer.json() == sealed_answer.json()
    assert f"({camera.id}, " in cold_answer.json()["detail"]
    assert stored_rows() == before  # nothing of the batch, not even its new frame or any detection
    assert count_rows("frame_metadata_default") == count_rows("detections_default") == 0


def test_the_batch_without_its_repeated_frame_is_accepted_and_read_with_the_cold_ones(
    tiered_data, api_client, accept_any_past
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    original = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    new, _repeat = late_batch(camera, original)

    response = api_client.post_json("/api/v1/frames", [new])

    assert response.status_code == 201
    frames = api_client.get(
        "/api/v1/frames",
        {"camera_id": str(camera.id), "since": COLD_DAY.isoformat(), "until": (COLD_DAY + DAY).isoformat()},
    ).json()["results"]
    assert datetime.fromisoformat(frames[0]["timestamp"]) == datetime.fromisoformat(new["timestamp"])
    assert len({frame["timestamp"] for frame in frames}) == len(frames)


def test_ingest_into_hot_ranges_never_reads_a_cold_file(tiered_data, monkeypatch):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()

    def no_cold_reads(*args, **kwargs):
        raise AssertionError("the ingest fast path read a cold file")

    monkeypatch.setattr(cold, "cold_query", no_cold_reads)

    ingest(frames_document(camera, HOT_DAY + timedelta(hours=5), 50, step_seconds=1))

    assert count_rows("frame_metadata") == 2 * 2 * 120 + 50


def test_a_late_metric_repeating_a_cold_sample_is_counted_as_a_duplicate_and_not_stored_again(tiered_data):
    camera, _ = tiered_data
    october = COLD_DAY - timedelta(days=14)
    RetentionPolicy.objects.filter(table="system_metrics").update(cold_after_days=7)
    partitions_apply(moment=october)
    samples = [
        {"camera_id": str(camera.id), "timestamp": (october + timedelta(minutes=n)).isoformat(), "name": "fps",
         "value": 30 - n, "labels": {"stream": "main", "gpu": n % 2}}
        for n in range(3)
    ]  # fmt: skip
    metrics_ingest(metrics=metrics_decode(json.dumps(samples).encode(), now=NOW))
    PartitionTier.objects.create(
        table="system_metrics",
        partition="system_metrics_p202610",
        range_start=october.replace(day=1),
        range_end=COLD_DAY.replace(day=1),
        tier="sealed",
    )
    tier_now()
    assert PartitionTier.objects.get(partition="system_metrics_p202610").tier == "cold"
    retried = [{**sample, "labels": dict(reversed(sample["labels"].items()))} for sample in samples]  # key order
    retried.append({**samples[0], "name": "gpu_utilization"})  # a new sample

    result = metrics_ingest(metrics=metrics_decode(json.dumps(retried).encode(), now=NOW))

    assert (result.metrics, result.duplicates) == (1, 3)
    assert count_rows("system_metrics") == 1


def test_the_tiering_never_merges_a_duplicate_into_a_cold_file(tiered_data):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    cold_file = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    original = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    ingest(frames_document(camera, COLD_DAY + timedelta(hours=22), 2))  # late rows, accepted
    with connection.cursor() as cursor:  # a duplicate stored behind ingest's back (by hand, or before its check)
        cursor.execute(
            "INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, detection_count,"
            " vehicle_count, person_count, bicycle_count) VALUES (%s, %s, 7, 'completed', 0, 0, 0, 0)",
            [camera.id, original["timestamp"]],
        )
    default_partitions_sweep(now=NOW)

    result = tier_now()

    failed = [run for run in result.runs if run.partition == "frame_metadata_p20261110"]
    assert [run.state for run in failed] == [ArchiveState.FAILED]
    assert "repeat (camera_id, timestamp)" in failed[0].error
    assert str(camera.id) in failed[0].error
    assert "frame_metadata_p20261110" in partition_names("frame_metadata")  # the late rows stay readable
    assert count_rows("frame_metadata_p20261110") == 3
    unchanged = PartitionTier.objects.get(partition="frame_metadata_p20261110")
    assert (unchanged.location, unchanged.rows) == (cold_file.location, cold_file.rows)
    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject__endswith="cold tiering")
    assert alert.state == AlertState.OPEN
    assert ArchiveRun.objects.filter(partition="frame_metadata_p20261110", state=ArchiveState.FAILED).count() == 1


def test_a_late_frame_for_a_cold_range_whose_file_is_unreadable_is_a_503_and_nothing_is_written(
    tiered_data, api_client, accept_any_past, archive_root
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    (archive_root / PartitionTier.objects.get(partition="frame_metadata_p20261110").location).unlink()
    before = stored_rows()

    response = api_client.post_json("/api/v1/frames", frames_document(camera, COLD_DAY + timedelta(hours=21), 2))

    assert response.status_code == 503
    assert response.json()["detail"]["partitions"] == ["frame_metadata_p20261110"]
    assert stored_rows() == before


def test_a_status_update_of_a_cold_frame_says_it_is_cold_not_missing(tiered_data, api_client, accept_any_past):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    cold_frame = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    updates = [
        {"camera_id": str(camera.id), "timestamp": cold_frame["timestamp"], "processing_status": "completed"},
        {"camera_id": str(camera.id), "timestamp": (COLD_DAY + timedelta(hours=23)).isoformat(),
         "processing_status": "completed"},  # no such frame
    ]  # fmt: skip

    response = api_client.patch_json("/api/v1/frames/status", updates)

    assert response.status_code == 200
    assert response.json() == {"updated": 0, "missing": [1], "cold": [0]}


def repeat_cold_frame_by_hand(camera, original: dict, *, detections: int) -> None:
    """A late frame repeating a cold frame's (camera_id, timestamp), with `detections` detections, stored behind
    ingest's back (by hand, or before ingest checked cold files), beside late rows that are fine."""
    ingest(frames_document(camera, COLD_DAY + timedelta(hours=22), 2))  # late rows, accepted
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, detection_count,"
            " vehicle_count, person_count, bicycle_count) VALUES (%s, %s, 7, 'completed', %s, 0, 0, 0)",
            [camera.id, original["timestamp"], detections],
        )
        for _ in range(detections):
            cursor.execute(
                "INSERT INTO detections (camera_id, timestamp, object_type, confidence, bbox_x1, bbox_y1, bbox_x2,"
                " bbox_y2) VALUES (%s, %s, 'car', 0.5, 1, 2, 3, 4)",
                [camera.id, original["timestamp"]],
            )
    default_partitions_sweep(now=NOW)


def test_late_duplicates_are_listed_deleted_and_the_next_run_merges_the_rest(tiered_data, api_client):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    original = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    moment = datetime.fromisoformat(original["timestamp"])
    the_frame = {"camera_id": str(camera.id), "since": moment.isoformat(), "until": (moment + MICROSECOND).isoformat()}
    before = api_client.get("/api/v1/frames", the_frame)
    assert len(before.json()["results"]) == 1
    repeat_cold_frame_by_hand(camera, original, detections=2)
    refused = tier_now()
    assert {run.partition: run.state for run in refused.runs} == {
        "frame_metadata_p20261110": ArchiveState.FAILED,
        "detections_p20261110": ArchiveState.FAILED,  # the repeated frame's detections would double its own
    }
    frames_run = next(run for run in refused.runs if run.partition == "frame_metadata_p20261110")
    assert "manage.py archive late-duplicates frame_metadata_p20261110 --delete" in frames_run.error
    files = dict(PartitionTier.objects.values_list("partition", "rows"))

    listed = io.StringIO()
    call_command("archive", "late-duplicates", "frame_metadata_p20261110", stdout=listed)

    assert f"  {camera.id}, {moment.replace(tzinfo=None)}" in listed.getvalue()
    assert "1 (camera_id, timestamp) key(s) of frame_metadata_p20261110 repeat cold rows" in listed.getvalue()
    assert count_rows("frame_metadata_p20261110") == 3  # listing deletes nothing

    for partition in ("frame_metadata_p20261110", "detections_p20261110"):
        call_command("archive", "late-duplicates", partition, "--delete", stdout=io.StringIO())
    assert count_rows("frame_metadata_p20261110") == 2
    late_detections = count_rows("detections_p20261110")
    assert late_detections == sum(len(frame["detections"]) for frame in frames_document(camera, COLD_DAY, 2))
    assert late_rows_repeating_cold(partition="frame_metadata_p20261110") == ("frame_metadata", [])

    merged = tier_now()

    assert [run.state for run in merged.runs] == [ArchiveState.DROPPED, ArchiveState.DROPPED]
    tiers = dict(PartitionTier.objects.values_list("partition", "rows"))
    assert tiers["frame_metadata_p20261110"] == files["frame_metadata_p20261110"] + 2
    assert tiers["detections_p20261110"] == files["detections_p20261110"] + late_detections
    after = api_client.get("/api/v1/frames", the_frame)
    assert after.json() == before.json()  # the frame stored first, with its own detections, once
    assert after.json()["results"][0]["frame_number"] == original["frame_number"]


def test_late_duplicates_of_metric_samples_are_deleted_by_their_whole_key(tiered_data):
    camera, _ = tiered_data
    october = COLD_DAY - timedelta(days=14)
    RetentionPolicy.objects.filter(table="system_metrics").update(cold_after_days=7)
    partitions_apply(moment=october)
    sample = {"camera_id": str(camera.id), "timestamp": october.isoformat(), "name": "fps", "value": 30,
              "labels": {"stream": "main"}}  # fmt: skip
    metrics_ingest(metrics=metrics_decode(json.dumps([sample]).encode(), now=NOW))
    PartitionTier.objects.create(
        table="system_metrics",
        partition="system_metrics_p202610",
        range_start=october.replace(day=1),
        range_end=COLD_DAY.replace(day=1),
        tier="sealed",
    )
    tier_now()
    with connection.cursor() as cursor:  # the same sample again, and two that differ in one part of the key
        for name, labels in (
            ("fps", '{"stream": "main"}'),
            ("fps", '{"stream": "sub"}'),
            ("gpu", '{"stream": "main"}'),
        ):
            cursor.execute(
                "INSERT INTO system_metrics (camera_id, timestamp, name, value, labels, alert_level)"
                " VALUES (%s, %s, %s, 1, %s, 'none')",
                [camera.id, october, name, labels],
            )
    default_partitions_sweep(now=NOW)

    table, deleted = late_rows_repeating_cold_delete(partition="system_metrics_p202610")

    assert table == "system_metrics"
    assert deleted == [(str(camera.id), october.replace(tzinfo=None), "fps", '{"stream": "main"}')]
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, labels::text FROM system_metrics_p202610 ORDER BY name, labels::text")
        assert cursor.fetchall() == [("fps", '{"stream": "sub"}'), ("gpu", '{"stream": "main"}')]


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ("frame_metadata_p20261125", "frame_metadata_p20261125 is not the partition of a cold range"),
        ("frame_metadata_p20261110", "holds no late rows: its range is cold and no partition of it is attached"),
        ("nothing; DROP TABLE cameras_camera", "is not the partition of a cold range"),
    ],
)
def test_late_duplicates_of_a_partition_that_is_not_a_cold_ranges_late_rows_is_a_clear_error(
    tiered_data, partition, message
):
    seal_days(COLD_DAY)
    tier_now()

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("archive", "late-duplicates", partition, "--delete")


def test_the_admin_lists_late_duplicates_of_a_refused_merge_and_deletes_them_once_confirmed(
    tiered_data, admin_client, api_client
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    original = frames_document(camera, COLD_DAY + timedelta(hours=9), 5, step_seconds=30)[3]
    repeat_cold_frame_by_hand(camera, original, detections=1)
    refused = tier_now()
    runs = [run.pk for run in refused.runs]
    changelist = reverse("admin:archival_archiverun_changelist")
    moment = datetime.fromisoformat(original["timestamp"])

    listed = api_client.get("/api/v1/partitions/frame_metadata_p20261110/late-duplicates")
    preview = admin_client.post(changelist, {"action": "late_duplicates", "_selected_action": runs})

    assert listed.status_code == 200
    assert listed.json() == {
        "partition": "frame_metadata_p20261110",
        "table": "frame_metadata",
        "key": ["camera_id", "timestamp"],
        "count": 1,
        "keys": [[str(camera.id), moment.replace(tzinfo=None).isoformat()]],
    }
    page = preview.content.decode()
    assert preview.status_code == 200
    assert "frame_metadata_p20261110 — 1 repeated (camera_id, timestamp)" in page
    assert "detections_p20261110 — 1 repeated (camera_id, timestamp)" in page
    assert f"{camera.id}, {moment.replace(tzinfo=None)}" in page
    assert count_rows("frame_metadata_p20261110") == 3  # nothing deleted before the confirmation

    confirmed = admin_client.post(
        changelist, {"action": "late_duplicates", "_selected_action": runs, "confirm": "delete"}, follow=True
    )

    assert "Deleted the late rows of 1 repeated key(s) from frame_metadata_p20261110" in confirmed.content.decode()
    assert count_rows("frame_metadata_p20261110") == 2
    assert api_client.get("/api/v1/partitions/detections_p20261110/late-duplicates").json()["count"] == 0
    assert [run.state for run in tier_now().runs] == [ArchiveState.DROPPED, ArchiveState.DROPPED]


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("frame_metadata_p20261125", 404, "frame_metadata_p20261125 is not the partition of a cold range"),
        ("x" * 129, 422, "A partition name is at most 128 characters"),
    ],
)
def test_late_duplicates_of_a_partition_that_is_no_cold_range_is_a_clear_api_error(
    tiered_data, api_client, path, status, detail
):
    response = api_client.get(f"/api/v1/partitions/{path}/late-duplicates")

    assert response.status_code == status
    assert response.json() == {"detail": detail}
