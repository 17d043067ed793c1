"""The page for one camera: 24 hours of rollup-based numbers per hour, completeness against the fps its
config promises, fps from its metrics, its alerts, its latest frames with detections — in a fixed number of
queries whatever the data size."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cameras.choices import AlertKind, AlertState
from cameras.models import Alert
from telemetry import camera_page as camera_page_module
from telemetry.models import DetectionHourlyRollup, FrameHourlyRollup, RollupScope, SystemMetric
from telemetry.selectors.camera_page import camera_page, promised_fps
from telemetry.services.partitions import partitions_apply
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db

# 00:05:30 on the 1st of a month: the window crosses a day, a month and (for frames) a partition boundary.
NOW = datetime(2026, 12, 1, 0, 5, 30, tzinfo=UTC)
CURRENT_HOUR = datetime(2026, 12, 1, 0, tzinfo=UTC)


@pytest.fixture
def pinned(monkeypatch):
    monkeypatch.setattr(camera_page_module, "page_now", lambda: NOW)
    partitions_apply(moment=NOW)


def hour_rollup(camera, bucket, *, frames, failed=0, p95=None):
    return FrameHourlyRollup.objects.create(
        scope=RollupScope.CAMERA, scope_id=camera.pk, camera=camera, bucket=bucket, refreshed_at=bucket,
        frames=frames, failed_frames=failed, processing_time_count=frames, processing_time_sum=frames * 20.0,
        processing_time_p95=p95, processing_time_max=p95, detections=0,
    )  # fmt: skip


def detection_rollup(camera, bucket, object_type, count):
    DetectionHourlyRollup.objects.create(
        scope=RollupScope.CAMERA, scope_id=camera.pk, camera=camera, bucket=bucket, refreshed_at=bucket,
        object_type=object_type, detections=count, confidence_sum=count * 0.8,
    )  # fmt: skip


def insert_frame(camera, timestamp, *, number, detections):
    """A frame and its detection rows, as ingest stores them (a frame's detections are stored once)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, processing_time_ms, "
            "detection_count, vehicle_count, person_count, bicycle_count) "
            "VALUES (%s, %s, %s, 'completed', 21.5, %s, 0, 0, 0)",
            [camera.pk, timestamp, number, len(detections)],
        )
        for detection in detections:
            x1, y1, x2, y2 = detection["bbox"]
            cursor.execute(
                "INSERT INTO detections (camera_id, timestamp, object_type, confidence, bbox_x1, bbox_y1, bbox_x2, "
                "bbox_y2, track_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [camera.pk, timestamp, detection["object_type"], detection["confidence"], x1, y1, x2, y2,
                 detection.get("track_id")],
            )  # fmt: skip


def populate(camera, *, scale=1):
    previous = CURRENT_HOUR - timedelta(hours=1)  # 23:00 on the 30th
    hour_rollup(camera, previous, frames=3600 * 2 - 720, failed=36, p95=41.0)  # 90 % of 2 fps
    hour_rollup(camera, CURRENT_HOUR, frames=660, failed=0, p95=30.0)  # 330 s at 2 fps: 100 %
    hour_rollup(camera, CURRENT_HOUR - timedelta(hours=30), frames=99_999)  # before the window
    for object_type, count in [("car", 500), ("person", 40)]:
        detection_rollup(camera, previous, object_type, count * scale)
    for minute in range(0, 60, 60 // (6 * scale) or 1):
        SystemMetric.objects.create(
            camera_id=camera.pk, timestamp=previous + timedelta(minutes=minute), name="fps", value=1.5
        )
        SystemMetric.objects.create(
            camera_id=camera.pk, timestamp=previous + timedelta(minutes=minute), name="gpu", value=99
        )
    for number in range(5 * scale):
        insert_frame(
            camera,
            NOW - timedelta(seconds=number + 1),
            number=1000 - number,
            detections=[{"object_type": "car", "confidence": 0.91, "bbox": [1, 2, 3, 4], "track_id": 7}],
        )
    Alert.objects.create(
        camera=camera, kind=AlertKind.CAMERA_OFFLINE, severity="critical", state=AlertState.RESOLVED,
        message="silent", opened_at=previous, resolved_at=previous + timedelta(minutes=20),
    )  # fmt: skip
    Alert.objects.create(
        camera=camera, kind=AlertKind.PROCESSING_FAILURES, severity="warning", message="failing",
        opened_at=NOW - timedelta(minutes=3),
    )  # fmt: skip
    Alert.objects.create(
        camera=camera, kind=AlertKind.METRIC_THRESHOLD, subject="old", state=AlertState.RESOLVED, message="old",
        opened_at=NOW - timedelta(days=3), resolved_at=NOW - timedelta(days=2),
    )  # fmt: skip


def test_the_page_data_per_hour_from_rollups_and_metrics(pinned):
    # Given a 2 fps camera with rollups, metrics, frames and alerts
    camera = make_camera(config={"fps": 2, "stream_url": "rtsp://u:p@x"})
    populate(camera)

    # When its page is built at 00:05:30
    page = camera_page(camera=camera, now=NOW)

    # Then the window is the 24 hours up to the end of the current hour
    assert (page.since, page.until) == (CURRENT_HOUR - timedelta(hours=23), CURRENT_HOUR + timedelta(hours=1))
    hours = {hour["bucket"]: hour for hour in page.hours}
    assert len(hours) == 24
    previous = hours[CURRENT_HOUR - timedelta(hours=1)]
    assert previous["frames"] == 6480
    assert previous["expected_frames"] == 7200
    assert previous["completeness"] == pytest.approx(0.9)
    assert previous["failure_rate"] == pytest.approx(36 / 6480)
    assert previous["frames_per_second"] == pytest.approx(1.8)
    assert previous["p95_processing_time_ms"] == 41.0
    assert previous["detections"] == {"car": 500, "person": 40}
    assert previous["fps_mean"] == pytest.approx(1.5)
    # the current hour is judged on its first 330 seconds
    current = hours[CURRENT_HOUR]
    assert current["expected_frames"] == pytest.approx(660)
    assert current["completeness"] == pytest.approx(1.0)
    # an hour without data is 0 frames and 0 % complete
    assert hours[CURRENT_HOUR - timedelta(hours=5)]["completeness"] == 0
    assert page.totals["frames"] == 6480 + 660
    # alerts: the one open now and the one resolved in the window, newest first; not the 3-day-old one
    assert [alert.kind for alert in page.alerts] == [AlertKind.PROCESSING_FAILURES, AlertKind.CAMERA_OFFLINE]
    # latest frames, newest first, with their detections
    assert [frame["frame_number"] for frame in page.frames] == [1000, 999, 998, 997, 996]
    assert page.frames[0]["detections"] == [{"object_type": "car", "confidence": 0.91, "track_id": 7}]


@pytest.mark.parametrize(
    ("config", "fps"),
    [({"fps": 25}, 25.0), ({"fps": "12.5"}, 12.5), ({}, None), ({"fps": -1}, None), ({"fps": True}, None),
     ({"fps": "nan"}, None), ({"fps": 10**9}, None), ({"fps": [1]}, None)],
)  # fmt: skip
def test_the_promised_fps_comes_from_a_sane_config_value(config, fps):
    assert promised_fps(config) == fps


def test_without_a_promised_fps_completeness_is_unknown(pinned):
    camera = make_camera(config={})
    hour_rollup(camera, CURRENT_HOUR, frames=10)
    page = camera_page(camera=camera, now=NOW)
    assert all(hour["completeness"] is None for hour in page.hours)
    assert page.totals["completeness"] is None


def test_the_admin_page_renders_and_costs_the_same_queries_with_ten_times_the_data(admin_client, pinned):
    # Given two cameras, one with ten times the data of the other
    small, large = make_camera(config={"fps": 2}), make_camera(config={"fps": 2, "stream_url": "rtsp://u:p@x"})
    populate(small)
    populate(large, scale=10)

    # When an operator opens both pages
    with CaptureQueriesContext(connection) as small_queries:
        small_response = admin_client.get(reverse("operations-camera", args=[small.pk]))
    with CaptureQueriesContext(connection) as large_queries:
        large_response = admin_client.get(reverse("operations-camera", args=[large.pk]))

    # Then both render, with the same, small number of queries
    assert small_response.status_code == large_response.status_code == 200
    assert len(small_queries) == len(large_queries)
    # 10: the latest frames' detections are their own query (stored once, docs/storage.md), plus the look-up of
    # cold ranges that query makes; neither grows with the data.
    assert len(large_queries) <= 10, [query["sql"][:100] for query in large_queries.captured_queries]
    html = large_response.content.decode()
    assert '<span class="count" id="camera-completeness">' in html
    assert 'id="camera-alert-timeline"' in html
    charts = large_response.context["charts"]
    assert charts["promised_fps"] == 2.0
    assert charts["detections"]["car"][-2] == 5000
    # and the stream credentials in its config are not on the page
    assert "rtsp://u:p@x" not in html


def test_an_unknown_camera_is_404_and_the_page_is_for_staff_only(admin_client, client, pinned):
    camera = make_camera()
    assert admin_client.get("/admin/operations/cameras/00000000-0000-0000-0000-000000000001/").status_code == 404
    response = client.get(reverse("operations-camera", args=[camera.pk]))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_camera_list_and_form_link_to_the_page(admin_client):
    camera = make_camera()
    url = reverse("operations-camera", args=[camera.pk])
    assert url in admin_client.get(reverse("admin:cameras_camera_changelist")).content.decode()
    assert url in admin_client.get(reverse("admin:cameras_camera_change", args=[camera.pk])).content.decode()
