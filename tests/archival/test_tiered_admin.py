"""The read-only admin browsers for frames, detections and metrics answer a time range the same whichever tiers it
spans: the same rows in the same order before and after it went cold, and across hot + sealed + cold."""

import html
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from archival.models import RetentionPolicy
from telemetry import admin as telemetry_admin
from telemetry.models import PartitionTier
from telemetry.services.batches import metrics_decode
from telemetry.services.ingest import metrics_ingest
from telemetry.services.partitions import partitions_apply
from tests.archival.conftest import partition_names
from tests.archival.test_tiering import (
    COLD_DAY,
    DAY,
    HOT_DAY,
    NOW,
    SEALED_DAY,
    seal_days,
    tier_now,
)

pytestmark = pytest.mark.django_db

OCTOBER_DAY = COLD_DAY - timedelta(days=14)  # inside the 30-day acceptance window at NOW

FRAMES = "admin:telemetry_framemetadatarecord_changelist"
DETECTIONS = "admin:telemetry_detectionrecord_changelist"
METRICS = "admin:telemetry_systemmetricrecord_changelist"


def listed(admin_client, url_name: str, **filters: str) -> list[tuple]:
    """Every row of every page of a changelist, each as all its column values, in the order shown."""
    rows: list[tuple] = []
    page = 1
    while True:
        response = admin_client.get(reverse(url_name), {**filters, "p": page})
        assert response.status_code == 200
        changelist = response.context["cl"]
        found = list(changelist.result_list)
        rows.extend(tuple(getattr(r, f.attname) for f in r._meta.concrete_fields) for r in found)
        if len(found) < changelist.list_per_page:
            return rows
        page += 1


def ingest_metrics(camera, start, count: int) -> None:
    metrics = [
        {
            "camera_id": str(camera.id),
            "timestamp": (start + timedelta(minutes=index)).isoformat(),
            "name": "fps",
            "value": 30 - index / 7,
            "labels": {"stream": f"s{index % 2}"},
        }
        for index in range(count)
    ]
    metrics_ingest(metrics=metrics_decode(json.dumps(metrics).encode(), now=NOW))


@pytest.mark.parametrize("url_name", [FRAMES, DETECTIONS])
def test_an_admin_range_lists_the_same_rows_in_the_same_order_before_and_after_it_went_cold(
    admin_client, tiered_data, url_name
):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    window = {
        "camera_id": str(camera.id),
        "since": (COLD_DAY + timedelta(hours=9, minutes=10)).isoformat(),
        "until": (COLD_DAY + timedelta(hours=9, minutes=50)).isoformat(),
    }
    before = listed(admin_client, url_name, **window)

    tier_now()

    assert "frame_metadata_p20261110" not in partition_names("frame_metadata")
    with CaptureQueriesContext(connection) as queries:
        after = listed(admin_client, url_name, **window)
    assert before
    assert after == before
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]  # PostgreSQL counts nothing


def test_an_admin_range_spanning_hot_sealed_and_cold_lists_one_timeline(admin_client, tiered_data):
    camera, _ = tiered_data
    seal_days(COLD_DAY, SEALED_DAY)
    window = {"camera_id": str(camera.id), "since": COLD_DAY.isoformat(), "until": (NOW + DAY).isoformat()}
    before = {url_name: listed(admin_client, url_name, **window) for url_name in (FRAMES, DETECTIONS)}
    # without a camera too (every camera's rows of the range, newest first), with a status filter
    everyone = {"since": COLD_DAY.isoformat(), "processing_status__exact": "failed"}
    before_everyone = listed(admin_client, FRAMES, **everyone)

    tier_now()

    tiers = dict(PartitionTier.objects.filter(table="frame_metadata").values_list("partition", "tier"))
    assert tiers == {"frame_metadata_p20261110": "cold", "frame_metadata_p20261123": "sealed"}
    frames = listed(admin_client, FRAMES, **window)
    assert len(frames) == 360
    assert frames == before[FRAMES]
    assert listed(admin_client, DETECTIONS, **window) == before[DETECTIONS]
    timestamps = [row[2] for row in frames]  # id, camera_id, timestamp, ...
    assert timestamps == sorted(timestamps, reverse=True)
    assert {row[2].date() for row in frames} == {COLD_DAY.date(), SEALED_DAY.date(), HOT_DAY.date()}
    failed = listed(admin_client, FRAMES, **everyone)
    assert len(failed) == 240  # 2 cameras x 3 days x 40 failed frames
    assert failed == before_everyone


def test_an_unfiltered_list_stays_on_postgresql_and_says_how_to_list_cold_ranges(admin_client, tiered_data):
    seal_days(COLD_DAY)
    tier_now()

    response = admin_client.get(reverse(FRAMES))

    assert {row.timestamp.date() for row in response.context["cl"].result_list} <= {SEALED_DAY.date(), HOT_DAY.date()}
    assert "are listed once a time range reaching them is chosen" in response.content.decode()


def test_a_cold_frames_page_shows_it_with_its_detections_as_sent(admin_client, tiered_data):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    window = {"camera_id": str(camera.id), "since": COLD_DAY.isoformat(), "until": (COLD_DAY + DAY).isoformat()}
    changelist = admin_client.get(reverse(FRAMES), window).context["cl"]
    frame = next(row for row in changelist.result_list if row.detection_count == 3)
    page_before = admin_client.get(changelist.url_for_result(frame)).content.decode()
    detections_before = rows_behind_link(admin_client, page_before)

    tier_now()

    changelist = admin_client.get(reverse(FRAMES), window).context["cl"]
    cold_frame = next(row for row in changelist.result_list if row.id == frame.id)
    response = admin_client.get(changelist.url_for_result(cold_frame))
    assert response.status_code == 200
    page = response.content.decode()
    assert "plate" in page
    assert page.count("object_type") == 3
    assert _detections_block(page) == _detections_block(page_before)
    # its link to the detections browser lists the frame's detection rows, the same as before
    detections = rows_behind_link(admin_client, page)
    assert len(detections) == 3
    assert detections == detections_before
    # without the timestamp its link carries, the frame is still found (every cold file of the table is asked)
    bare = admin_client.get(reverse("admin:telemetry_framemetadatarecord_change", args=[frame.id]))
    assert bare.status_code == 200
    assert _detections_block(bare.content.decode()) == _detections_block(page_before)


def rows_behind_link(admin_client, page: str) -> list[tuple]:
    """The rows of the detections browser that a frame's page links to."""
    link = html.unescape(re.search(r'href="(/admin/telemetry/detectionrecord/\?[^"]+)"', page).group(1))
    changelist = admin_client.get(link).context["cl"]
    return [tuple(getattr(r, f.attname) for f in r._meta.concrete_fields) for r in changelist.result_list]


def _detections_block(page: str) -> str:
    return page[page.index("<pre>") : page.index("</pre>")]


def test_a_cold_detection_opens_from_its_list(admin_client, tiered_data):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    window = {"camera_id": str(camera.id), "since": COLD_DAY.isoformat(), "until": (COLD_DAY + DAY).isoformat()}
    changelist = admin_client.get(reverse(DETECTIONS), window).context["cl"]
    detection = changelist.result_list[0]

    response = admin_client.get(changelist.url_for_result(detection))

    assert response.status_code == 200
    assert detection.object_type in response.content.decode()


def test_the_metrics_browser_lists_cold_metrics_the_same(admin_client, tiered_data):
    camera, other = tiered_data
    # Metrics are partitioned by month: October goes cold, November stays hot.
    RetentionPolicy.objects.filter(table="system_metrics").update(cold_after_days=7)
    partitions_apply(moment=OCTOBER_DAY)
    for source in (camera, other):
        ingest_metrics(source, OCTOBER_DAY + timedelta(hours=8), 150)
        ingest_metrics(source, HOT_DAY + timedelta(hours=8), 30)
    PartitionTier.objects.create(
        table="system_metrics",
        partition="system_metrics_p202610",
        range_start=OCTOBER_DAY.replace(day=1),
        range_end=COLD_DAY.replace(day=1),
        tier="sealed",
    )
    window = {"since": OCTOBER_DAY.isoformat(), "until": (NOW + DAY).isoformat(), "alert_level__exact": "none"}
    before = listed(admin_client, METRICS, **window)

    tier_now()

    assert PartitionTier.objects.get(partition="system_metrics_p202610").tier == "cold"
    after = listed(admin_client, METRICS, **window)
    assert len(after) == 360
    assert after == before
    assert {row[2].month for row in after} == {10, 11}  # id, camera_id, timestamp, name, value, labels, alert_level
    assert {row[-1] for row in after} == {"none"}
    assert any(row[-2] == {"stream": "s1"} for row in after)  # labels come back as JSON, as from PostgreSQL


def test_an_unreadable_cold_file_is_named_on_the_list_never_silently_left_out(admin_client, tiered_data, archive_root):
    camera, _ = tiered_data
    seal_days(COLD_DAY)
    tier_now()
    (archive_root / PartitionTier.objects.get(partition="frame_metadata_p20261110").location).unlink()

    response = admin_client.get(reverse(FRAMES), {"camera_id": str(camera.id), "since": COLD_DAY.isoformat()})

    assert response.status_code == 200
    assert "frame_metadata_p20261110 cannot be read" in response.content.decode()


def test_a_list_spanning_cold_files_pages_through_its_first_rows_and_says_how_to_reach_older_ones(
    admin_client, tiered_data, monkeypatch
):
    seal_days(COLD_DAY)
    tier_now()
    monkeypatch.setattr(telemetry_admin, "MAX_TIERED_ROWS", 200)  # two pages of 100
    window = {"since": COLD_DAY.isoformat(), "until": (COLD_DAY + DAY).isoformat()}
    second = admin_client.get(reverse(FRAMES), {**window, "p": 2})

    deeper = admin_client.get(reverse(FRAMES), {**window, "p": 3})

    assert deeper.status_code == 200
    assert deeper.context["cl"].page_num == 2
    assert list(deeper.context["cl"].result_list) == list(second.context["cl"].result_list)
    assert len(second.context["cl"].result_list) == 100  # 240 cold frames: a third page would have had rows
    warning = [str(message) for message in deeper.context["messages"]]
    assert warning == [
        "A list whose range reaches cold files shows its first 200 rows (page 2): each page reads every row before it "
        "from every tier. Narrow the from / until range to list older rows."
    ]
