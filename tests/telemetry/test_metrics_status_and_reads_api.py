import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from its_camera.choices import ApiScope
from telemetry.models import HOST_METRICS_CAMERA_ID, FrameMetadata, SystemMetric
from tests.conftest import ApiClient
from tests.telemetry.conftest import frame_payload, table_counts

pytestmark = pytest.mark.django_db


def metric(camera=None, **overrides):
    body = {"timestamp": datetime.now(UTC).isoformat(), "name": "fps", "value": 29.7, "labels": {"gpu": "0"}}
    if camera is not None:
        body["camera_id"] = str(camera.id)
    return body | overrides


def test_metrics_are_written_with_labels_and_update_last_seen(api_client, camera, partitions):
    batch = [metric(camera), metric(camera, name="gpu_utilization", value=0.83, alert_level="warning"), metric(None)]

    response = api_client.post_json("/api/v1/metrics", batch)

    assert response.status_code == 201
    assert response.json() == {"metrics": 3, "cameras": 1, "duplicates": 0}
    stored = {m.name: m for m in SystemMetric.objects.filter(camera=camera)}
    assert stored["gpu_utilization"].alert_level == "warning"
    assert stored["fps"].labels == {"gpu": "0"}
    # A host metric (no camera) is stored under the nil UUID: a distribution column cannot be NULL (Citus)
    assert SystemMetric.objects.filter(camera_id=HOST_METRICS_CAMERA_ID).count() == 1
    camera.refresh_from_db()
    assert camera.last_seen_at is not None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": "fast"}, "value"),
        ({"timestamp": "2026-11-25T10:00:00"}, "timestamp"),
        ({"name": "no spaces allowed"}, "name"),
        ({"camera_id": str(uuid.uuid4())}, "camera_id"),
        ({"alert_level": "panic"}, "alert_level"),
    ],
)
def test_a_bad_metric_rejects_the_batch_and_writes_nothing(api_client, camera, partitions, overrides, field):
    response = api_client.post_json("/api/v1/metrics", [metric(camera), metric(camera) | overrides])

    assert response.status_code == 422
    assert response.json()["detail"][0]["row"] == 1
    assert response.json()["detail"][0]["field"] == field
    assert table_counts()["system_metrics"] == 0


def test_an_infinite_metric_value_is_refused(api_client, camera):
    body = json.dumps([metric(camera, value=float("inf"))])

    response = api_client.post("/api/v1/metrics", data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "value"
    assert table_counts()["system_metrics"] == 0


def test_metrics_retry_with_idempotency_key_is_a_no_op(api_client, camera, partitions):
    batch = [metric(camera)]
    api_client.post_json("/api/v1/metrics", batch, HTTP_IDEMPOTENCY_KEY="m-1")

    retry = api_client.post_json("/api/v1/metrics", batch, HTTP_IDEMPOTENCY_KEY="m-1")

    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert SystemMetric.objects.count() == 1


SAMPLE_TIME = datetime(2026, 11, 25, 23, 55, 30, 250000, tzinfo=UTC)  # a fixed clock; the DEFAULT partition takes it


@pytest.fixture
def clock_at_samples(monkeypatch):
    """The API reads `timezone.now()` for its acceptance window (the last 30 days): pin it a minute after the
    samples, so they are accepted whatever the wall clock says."""
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: SAMPLE_TIME + timedelta(minutes=1))


def sample(camera=None, **overrides):
    return metric(camera, timestamp=SAMPLE_TIME.isoformat()) | overrides


def test_a_metrics_batch_retried_without_a_key_stores_nothing_twice(api_client, camera, clock_at_samples):
    # given a batch with a camera's metrics and a host metric (no camera), stored once
    batch = [sample(camera), sample(camera, name="gpu_utilization", value=0.83), sample(None, name="host_load")]
    first = api_client.post_json("/api/v1/metrics", batch)
    before = table_counts()["system_metrics"]

    # when the client, which never saw the first answer, sends it again without an Idempotency-Key
    retry = api_client.post_json("/api/v1/metrics", batch)

    # then the retry succeeds and writes nothing
    assert first.json() == {"metrics": 3, "cameras": 1, "duplicates": 0}
    assert retry.status_code == 201
    assert retry.json() == {"metrics": 0, "cameras": 1, "duplicates": 3}
    assert before == table_counts()["system_metrics"] == 3


def test_a_batch_that_overlaps_stored_samples_writes_only_the_new_ones(api_client, camera, clock_at_samples):
    api_client.post_json("/api/v1/metrics", [sample(camera), sample(None)])
    later = (SAMPLE_TIME + timedelta(seconds=5)).isoformat()

    # the same samples (labels in another key order are the same labels), plus a new one, plus a repeat of it
    response = api_client.post_json(
        "/api/v1/metrics",
        [
            sample(camera, labels={"gpu": "0"}),
            sample(None),
            sample(camera, timestamp=later),
            sample(camera, timestamp=later, value=1.0),
        ],
    )

    assert response.status_code == 201
    assert response.json() == {"metrics": 1, "cameras": 1, "duplicates": 3}
    assert table_counts()["system_metrics"] == 3
    # the first value written for a sample stays
    assert SystemMetric.objects.get(camera=camera, timestamp=SAMPLE_TIME + timedelta(seconds=5)).value == 29.7


def test_samples_differing_only_in_labels_camera_or_name_are_distinct(
    api_client, camera, make_camera, clock_at_samples
):
    other = make_camera(name="other")
    batch = [
        sample(camera, labels={"gpu": "0"}),
        sample(camera, labels={"gpu": "1"}),
        sample(camera, labels={}),
        sample(other),
        sample(None),
        sample(camera, name="gpu_utilization"),
    ]

    response = api_client.post_json("/api/v1/metrics", batch)

    assert response.json() == {"metrics": 6, "cameras": 2, "duplicates": 0}
    assert table_counts()["system_metrics"] == 6


def stored_frames(api_client, camera, count, **overrides):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    frames = [
        frame_payload(camera, index, start=start, processing_status="pending", **overrides) for index in range(count)
    ]
    assert api_client.post_json("/api/v1/frames", frames).status_code == 201
    return frames


def test_status_updates_address_frames_by_camera_and_timestamp(api_client, camera, partitions):
    frames = stored_frames(api_client, camera, 3)
    updates = [
        {"camera_id": frames[0]["camera_id"], "timestamp": frames[0]["timestamp"], "processing_status": "failed"},
        {
            "camera_id": frames[2]["camera_id"],
            "timestamp": frames[2]["timestamp"],
            "processing_status": "completed",
            "processing_time_ms": 41.0,
        },
        {
            "camera_id": frames[1]["camera_id"],
            "timestamp": (datetime.fromisoformat(frames[1]["timestamp"]) - timedelta(hours=1)).isoformat(),
            "processing_status": "failed",
        },
    ]

    response = api_client.patch_json("/api/v1/frames/status", updates)

    assert response.status_code == 200
    assert response.json() == {"updated": 2, "missing": [2], "cold": []}
    by_number = {f.frame_number: f for f in FrameMetadata.objects.all()}
    assert by_number[0].processing_status == "failed"
    assert by_number[0].processing_time_ms == 12.5  # kept when not given
    assert (by_number[2].processing_status, by_number[2].processing_time_ms) == ("completed", 41.0)
    assert by_number[1].processing_status == "pending"


def test_a_bad_status_update_changes_nothing(api_client, camera, partitions):
    frames = stored_frames(api_client, camera, 2)
    updates = [
        {"camera_id": frames[0]["camera_id"], "timestamp": frames[0]["timestamp"], "processing_status": "failed"},
        {"camera_id": frames[1]["camera_id"], "timestamp": frames[1]["timestamp"], "processing_status": "exploded"},
    ]

    response = api_client.patch_json("/api/v1/frames/status", updates)

    assert response.status_code == 422
    assert response.json()["detail"][0] | {"message": ""} == {"row": 1, "field": "processing_status", "message": ""}
    assert set(FrameMetadata.objects.values_list("processing_status", flat=True)) == {"pending"}


def test_a_status_update_is_pruned_to_one_partition(camera, partitions):
    from django.db import connection

    from telemetry.services.batches import FrameStatusIn
    from telemetry.services.frames import STATUS_UPDATE_SQL, status_update_params

    moment = datetime.now(UTC)
    update = FrameStatusIn(camera_id=camera.id, timestamp=moment, processing_status="failed")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + STATUS_UPDATE_SQL, status_update_params([update]))
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert set(re.findall(r"frame_metadata_(?:p\d+|default)", plan)) == {f"frame_metadata_p{moment:%Y%m%d}"}


def test_frames_are_listed_newest_first_for_a_camera_and_range_with_a_cursor(api_client, make_camera, partitions):
    camera, other = make_camera(), make_camera()
    frames = stored_frames(api_client, camera, 5)
    stored_frames(api_client, other, 2)
    since = frames[0]["timestamp"]

    first = api_client.get("/api/v1/frames", {"camera_id": str(camera.id), "since": since, "page_size": 3})
    second = api_client.get(first.json()["next"])

    assert first.status_code == 200
    numbers = [f["frame_number"] for f in first.json()["results"]] + [
        f["frame_number"] for f in second.json()["results"]
    ]
    assert numbers == [4, 3, 2, 1, 0]
    assert first.json()["results"][0]["detections"][0]["object_type"] == "car"
    assert second.json()["next"] is None


def test_frames_can_be_filtered_by_status_and_need_the_read_scope(api_client, make_api_key, camera, partitions):
    stored_frames(api_client, camera, 2)
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    api_client.post_json("/api/v1/frames", [frame_payload(camera, 9, start=earlier, processing_status="failed")])
    writer = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)

    failed = api_client.get("/api/v1/frames", {"camera_id": str(camera.id), "processing_status": "failed"})

    assert [f["frame_number"] for f in failed.json()["results"]] == [9]
    assert writer.get("/api/v1/frames", {"camera_id": str(camera.id)}).status_code == 403
    bad_range = api_client.get(
        "/api/v1/frames",
        {"camera_id": str(camera.id), "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert bad_range.status_code == 422
