import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from telemetry.models import (
    Detection,
    DetectionRecord,
    FrameMetadata,
    FrameMetadataRecord,
    SystemMetric,
    SystemMetricRecord,
)
from tests.telemetry.conftest import frame_payload

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "admin:telemetry_framemetadatarecord_changelist",
    "admin:telemetry_detectionrecord_changelist",
    "admin:telemetry_systemmetricrecord_changelist",
]


@pytest.fixture
def telemetry(api_client, make_camera, partitions):
    cameras = [make_camera(), make_camera()]
    for camera in cameras:
        frames = [frame_payload(camera, index) for index in range(3)]
        assert api_client.post_json("/api/v1/frames", frames).status_code == 201
        metric = {"camera_id": str(camera.id), "timestamp": frames[0]["timestamp"], "name": "fps", "value": 30}
        assert api_client.post_json("/api/v1/metrics", [metric]).status_code == 201
    return cameras


@pytest.mark.parametrize("url_name", CHANGELISTS)
def test_changelists_load_newest_first_without_a_full_count(admin_client, telemetry, url_name):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(url_name))

    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    assert results
    assert [r.id for r in results] == sorted((r.id for r in results), reverse=True)
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_frames_filter_by_camera_and_time_window(admin_client, telemetry):
    camera = telemetry[1]
    url = reverse("admin:telemetry_framemetadatarecord_changelist")

    response = admin_client.get(url, {"camera_id": str(camera.id), "window": "1h"})

    results = list(response.context["cl"].result_list)
    assert {r.camera_id for r in results} == {camera.id}
    assert [r.frame_number for r in results] == [2, 1, 0]
    assert str(camera.id).encode() in response.content


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        ({"camera_id": "not-a-uuid"}, "Camera id: 'not-a-uuid' is not a camera UUID."),
        ({"since": "yesterday"}, "From (UTC): 'yesterday' is not a date or date and time (ISO 8601, UTC)."),
        ({"until": "2026-13-01"}, "Until (UTC): '2026-13-01' is not a date or date and time (ISO 8601, UTC)."),
    ],
)
def test_a_filter_value_that_is_not_one_lists_nothing_and_says_why(admin_client, telemetry, parameters, said):
    url = reverse("admin:telemetry_framemetadatarecord_changelist")

    response = admin_client.get(url, parameters)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert [str(message) for message in response.context["messages"]] == [said]


@pytest.mark.parametrize(
    ("model", "url_name"),
    [
        (FrameMetadataRecord, "admin:telemetry_framemetadatarecord_change"),
        (DetectionRecord, "admin:telemetry_detectionrecord_change"),
        (SystemMetricRecord, "admin:telemetry_systemmetricrecord_change"),
    ],
)
def test_detail_pages_are_read_only(admin_client, telemetry, model, url_name):
    record = model.objects.order_by("-id").first()

    response = admin_client.get(reverse(url_name, args=[record.pk]))

    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert admin_client.post(reverse(url_name, args=[record.pk]), {}).status_code == 403


def test_frame_detail_shows_the_raw_detections(admin_client, telemetry):
    frame = FrameMetadataRecord.objects.order_by("-id").first()

    response = admin_client.get(reverse("admin:telemetry_framemetadatarecord_change", args=[frame.pk]))

    assert b"track_id" in response.content


@pytest.mark.parametrize(
    ("model", "twin"),
    [(FrameMetadata, FrameMetadataRecord), (Detection, DetectionRecord), (SystemMetric, SystemMetricRecord)],
)
def test_admin_twins_have_the_same_columns_as_the_real_tables(model, twin):
    def columns(m):
        return sorted(f.column for f in m._meta.concrete_fields)

    assert twin._meta.db_table == model._meta.db_table
    assert columns(twin) == columns(model)
