import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter

import pytest
from django.db import connection, connections
from django.test import override_settings

from its_camera.choices import ApiScope
from telemetry.models import Detection, FrameMetadata
from telemetry.selectors.timeline import frame_detections
from tests.conftest import ApiClient
from tests.telemetry.conftest import frame_payload, partition_row_counts, table_counts

pytestmark = pytest.mark.django_db

FRAMES_URL = "/api/v1/frames"
NOTHING_WRITTEN = {"frame_metadata": 0, "detections": 0, "system_metrics": 0, "telemetry_idempotency_keys": 0}


def post_frames(client, frames, **extra):
    return client.post(FRAMES_URL, data=json.dumps(frames), content_type="application/json", **extra)


def test_a_batch_of_frames_with_detections_is_written_with_summaries_and_the_raw_result(api_client, camera, partitions):
    frames = [frame_payload(camera, index, detections=5) for index in range(3)]
    frames[0]["detections"][0]["colour"] = "red"  # a key we do not model is kept in the detection's attributes

    response = post_frames(api_client, frames)

    assert response.status_code == 201, response.content
    assert response.json() == {"frames": 3, "detections": 15, "cameras": 1}
    stored = list(FrameMetadata.objects.filter(camera=camera).order_by("timestamp"))
    assert [f.frame_number for f in stored] == [0, 1, 2]
    first = stored[0]
    # car, person, truck, bicycle, bus
    assert (first.detection_count, first.vehicle_count, first.person_count, first.bicycle_count) == (5, 3, 1, 1)
    assert first.max_confidence == pytest.approx(0.54)
    assert (
        frame_detections(camera_id=camera.id, timestamps=[first.timestamp])[first.timestamp] == frames[0]["detections"]
    )
    assert first.timestamp == datetime.fromisoformat(frames[0]["timestamp"])
    detections = Detection.objects.filter(camera=camera, timestamp=first.timestamp).order_by("bbox_x1")
    assert [(d.object_type, d.track_id, d.bbox_x1, d.bbox_y2) for d in detections][:2] == [
        ("car", 1000, 0.0, 80.0),
        ("person", 1001, 10.0, 80.0),
    ]
    assert list(partition_row_counts("frame_metadata")) == [f"frame_metadata_p{first.timestamp:%Y%m%d}"]


def test_detections_are_stored_once_and_read_back_exactly_as_sent_extra_keys_included(api_client, camera, partitions):
    # Given frames whose detections carry model-specific keys, nested values, an upper-case class, an explicit
    # null track and integer coordinates, beside a frame with plain detections and one with none
    frames = [frame_payload(camera, index, detections=3) for index in range(3)]
    sent = frames[0]["detections"]
    sent[0].update(colour="red", plate={"text": "AB-123", "confidence": 0.71}, embedding=[0.1, -2.5, 3])
    sent[1].update(object_type="Car", track_id=None)
    sent[2].update(bbox=[1, 2, 30, 40])
    sent[2].pop("track_id")
    for detection in frames[1]["detections"]:  # untracked, nothing extra: the common case stores no attributes
        detection.pop("track_id")
    frames[2]["detections"] = []

    # When they are written and read back through the API
    assert post_frames(api_client, frames).status_code == 201
    since = datetime.fromisoformat(frames[0]["timestamp"])
    window = {"since": since.isoformat(), "until": (since + timedelta(minutes=1)).isoformat()}
    response = api_client.get(FRAMES_URL, {"camera_id": str(camera.id), **window})

    # Then every frame's detections are what was sent, in the order sent, and stored only as detection rows
    by_number = {frame["frame_number"]: frame["detections"] for frame in response.json()["results"]}
    assert by_number == {index: frames[index]["detections"] for index in range(3)}
    columns = {field.column for field in FrameMetadata._meta.concrete_fields}
    assert "detections" not in columns
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'frame_metadata' AND column_name = 'detections'"
        )
        assert cursor.fetchone()[0] == 0
    stored = list(
        Detection.objects.filter(camera=camera).order_by("timestamp", "id").values_list("object_type", "attributes")
    )
    assert stored[:3] == [
        ("car", {"colour": "red", "plate": {"text": "AB-123", "confidence": 0.71}, "embedding": [0.1, -2.5, 3]}),
        ("car", {"object_type": "Car", "track_id": None}),
        ("truck", None),
    ]
    assert [attributes for _, attributes in stored[3:]] == [None, None, None]


def test_a_batch_interleaving_cameras_is_written_grouped_by_camera_and_read_back_as_sent(
    api_client, make_camera, partitions
):
    # Given a batch as a gateway sends it: three cameras' frames interleaved, each camera's out of time order,
    # one detection carrying a key of its own
    cameras = [make_camera() for _ in range(3)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    frames = [frame_payload(camera, index, start=start, detections=3) for index in (2, 0, 1) for camera in cameras]
    frames[4]["detections"][1]["colour"] = "red"

    # When it is written
    assert post_frames(api_client, frames).status_code == 201

    # Then frames and detections lie grouped by camera (one run of ids each), each camera's in time order
    stored = list(FrameMetadata.objects.order_by("id").values_list("camera_id", "frame_number"))
    runs = [(camera_id, [number for _, number in run]) for camera_id, run in groupby(stored, key=itemgetter(0))]
    assert sorted(runs) == sorted((camera.id, [0, 1, 2]) for camera in cameras)
    detection_cameras = Detection.objects.order_by("id").values_list("camera_id", flat=True)
    assert len([camera_id for camera_id, _ in groupby(detection_cameras)]) == 3
    # and every frame reads back with its detections as sent, in the order sent
    window = {"since": start.isoformat(), "until": (start + timedelta(minutes=1)).isoformat()}
    for camera in cameras:
        response = api_client.get(FRAMES_URL, {"camera_id": str(camera.id), **window})
        read = {frame["frame_number"]: frame["detections"] for frame in response.json()["results"]}
        sent = {frame["frame_number"]: frame["detections"] for frame in frames if frame["camera_id"] == str(camera.id)}
        assert read == sent


def test_camera_last_seen_moves_forward_once_per_batch_and_never_back(api_client, camera, partitions):
    start = datetime.now(UTC) - timedelta(minutes=5)
    post_frames(api_client, [frame_payload(camera, index, start=start) for index in range(10)])
    camera.refresh_from_db()
    assert camera.last_seen_at == start + timedelta(milliseconds=33 * 9)

    post_frames(api_client, [frame_payload(camera, 0, start=start - timedelta(hours=1))])  # a late batch

    camera.refresh_from_db()
    assert camera.last_seen_at == start + timedelta(milliseconds=33 * 9)


def test_ndjson_is_accepted(api_client, camera, partitions):
    body = "\n".join(json.dumps(frame_payload(camera, index)) for index in range(4)) + "\n"

    response = api_client.post(FRAMES_URL, data=body, content_type="application/x-ndjson")

    assert response.status_code == 201
    assert FrameMetadata.objects.count() == 4
    assert Detection.objects.count() == 8


def test_a_late_frame_older_than_every_partition_lands_in_default_not_an_error(api_client, camera, partitions):
    old = datetime.now(UTC) - timedelta(days=20)  # late, but inside the acceptance window (30 days)

    response = post_frames(api_client, [frame_payload(camera, 0, start=old)])

    assert response.status_code == 201
    assert partition_row_counts("frame_metadata") == {"frame_metadata_default": 1}
    assert list(partition_row_counts("detections")) == ["detections_default"]


def _bad(mutation):
    def build(camera):
        frames = [frame_payload(camera, index) for index in range(3)]
        mutation(frames[2])
        return frames

    return build


BAD_BATCHES = {
    "unknown camera": (_bad(lambda f: f.update(camera_id=str(uuid.uuid4()))), "camera_id"),
    "naive timestamp": (_bad(lambda f: f.update(timestamp="2026-11-25T10:00:00")), "timestamp"),
    "confidence above 1": (_bad(lambda f: f["detections"][1].update(confidence=1.2)), "detections[1].confidence"),
    "inverted bbox": (_bad(lambda f: f["detections"][0].update(bbox=[50, 20, 10, 80])), "detections[0].bbox"),
    "short bbox": (_bad(lambda f: f["detections"][0].update(bbox=[1, 2, 3])), "detections[0].bbox"),
    "oversize json": (_bad(lambda f: f["detections"][0].update(note="x" * 70_000)), "detections"),
    "unknown status": (_bad(lambda f: f.update(processing_status="done")), "processing_status"),
    "duplicate frame": (_bad(lambda f: f.update(timestamp=None)), "timestamp"),
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_one_bad_row_rejects_the_batch_naming_row_and_field_and_writes_nothing(api_client, camera, partitions, case):
    build, field = BAD_BATCHES[case]
    frames = build(camera)
    if frames[2]["timestamp"] is None:
        frames[2]["timestamp"] = frames[0]["timestamp"]

    response = post_frames(api_client, frames)

    assert response.status_code == 422, response.content
    error = response.json()["detail"][0]
    assert (error["row"], error["field"]) == (2, field)
    assert error["message"]
    assert table_counts() == NOTHING_WRITTEN
    camera.refresh_from_db()
    assert camera.last_seen_at is None


def test_nan_written_by_a_python_client_is_a_422_naming_row_and_field(api_client, camera, partitions):
    frames = [frame_payload(camera, index) for index in range(2)]
    frames[1]["processing_time_ms"] = float("nan")
    body = json.dumps(frames)  # Python writes the non-standard literal NaN
    assert "NaN" in body

    response = api_client.post(FRAMES_URL, data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0] | {"message": ""} == {"row": 1, "field": "processing_time_ms", "message": ""}
    assert table_counts() == NOTHING_WRITTEN


def test_malformed_json_is_a_400(api_client, partitions):
    response = api_client.post(FRAMES_URL, data=b'[{"camera_id": ', content_type="application/json")

    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["detail"]


def test_an_empty_batch_is_refused(api_client):
    assert post_frames(api_client, []).status_code == 422


@override_settings(TELEMETRY_BATCH_HARD_LIMIT=5)
def test_past_the_hard_limit_the_batch_is_refused_with_413(api_client, camera, partitions):
    response = post_frames(api_client, [frame_payload(camera, index) for index in range(6)])

    assert response.status_code == 413
    assert "limit is 5" in response.json()["detail"]
    assert table_counts() == NOTHING_WRITTEN


@override_settings(TELEMETRY_MAX_BODY_BYTES=1000)
def test_a_body_past_the_byte_limit_is_refused_with_413(api_client, camera):
    response = post_frames(api_client, [frame_payload(camera, index) for index in range(10)])

    assert response.status_code == 413
    assert table_counts() == NOTHING_WRITTEN


def test_a_batch_larger_than_djangos_upload_limit_is_accepted(api_client, camera, partitions):
    frames = [frame_payload(camera, index, detections=5) for index in range(4000)]
    body = json.dumps(frames)
    assert len(body) > 2.5 * 1024 * 1024

    response = api_client.post(FRAMES_URL, data=body, content_type="application/json")

    assert response.status_code == 201
    assert table_counts()["detections"] == 20_000


def test_a_frame_already_stored_makes_the_batch_a_409_and_nothing_new_is_written(api_client, camera, partitions):
    start = datetime.now(UTC).replace(microsecond=0)  # one start: a second ticking between calls is no retry
    post_frames(api_client, [frame_payload(camera, 0, start=start)])
    retry = [frame_payload(camera, 1, start=start), frame_payload(camera, 0, start=start)]

    response = post_frames(api_client, retry)

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert table_counts()["frame_metadata"] == 1
    assert table_counts()["detections"] == 2


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer_and_writes_nothing(
    api_client, camera, partitions
):
    frames = [frame_payload(camera, index) for index in range(3)]
    first = post_frames(api_client, frames, HTTP_IDEMPOTENCY_KEY="batch-0001")

    retry = post_frames(api_client, frames, HTTP_IDEMPOTENCY_KEY="batch-0001")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() == {"frames": 3, "detections": 6, "cameras": 1}
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert table_counts() == {**NOTHING_WRITTEN, "frame_metadata": 3, "detections": 6, "telemetry_idempotency_keys": 1}


def test_an_idempotency_key_reused_with_another_body_is_refused(api_client, camera, partitions):
    post_frames(api_client, [frame_payload(camera, 0)], HTTP_IDEMPOTENCY_KEY="k")

    response = post_frames(api_client, [frame_payload(camera, 1)], HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]
    assert table_counts()["frame_metadata"] == 1


def test_a_rejected_batch_does_not_burn_its_idempotency_key(api_client, camera, partitions):
    bad = [frame_payload(camera, 0, timestamp="2026-01-01T00:00:00")]
    assert post_frames(api_client, bad, HTTP_IDEMPOTENCY_KEY="k").status_code == 422

    good = post_frames(api_client, [frame_payload(camera, 0)], HTTP_IDEMPOTENCY_KEY="k")

    assert good.status_code == 201
    assert table_counts()["frame_metadata"] == 1


def test_idempotency_keys_belong_to_one_api_key(make_api_key, camera, partitions):
    one = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)
    other = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)
    post_frames(one, [frame_payload(camera, 0)], HTTP_IDEMPOTENCY_KEY="same")

    response = post_frames(other, [frame_payload(camera, 1)], HTTP_IDEMPOTENCY_KEY="same")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert table_counts()["frame_metadata"] == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_write_the_batch_once(make_api_key, make_camera):
    from telemetry.services.partitions import partitions_apply

    partitions_apply()
    camera = make_camera()
    raw_key = make_api_key(ApiScope.TELEMETRY_WRITE).raw_key
    frames = [frame_payload(camera, index, detections=5) for index in range(500)]
    barrier = threading.Barrier(4)
    results = []

    def send():
        try:
            barrier.wait()
            response = post_frames(ApiClient(raw_key), frames, HTTP_IDEMPOTENCY_KEY="race")
            results.append((response.status_code, response.json(), response.get("Idempotent-Replayed")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _, _ in results] == [201] * 4
    assert {json.dumps(body) for _, body, _ in results} == {
        json.dumps({"frames": 500, "detections": 2500, "cameras": 1})
    }
    assert sorted(replayed or "" for _, _, replayed in results) == ["", "true", "true", "true"]
    assert table_counts() == {
        **NOTHING_WRITTEN,
        "frame_metadata": 500,
        "detections": 2500,
        "telemetry_idempotency_keys": 1,
    }


def test_ingest_needs_the_telemetry_write_scope(make_api_key, anonymous_api_client, camera):
    read_only = ApiClient(make_api_key(ApiScope.TELEMETRY_READ).raw_key)

    assert post_frames(anonymous_api_client, [frame_payload(camera)]).status_code == 401
    assert post_frames(read_only, [frame_payload(camera)]).status_code == 403
    assert table_counts() == NOTHING_WRITTEN


def test_the_openapi_document_describes_the_frame_body(client):
    schema = client.get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/frames"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body["type"] == "array"
    assert "confidence" in body["items"]["properties"]["detections"]["items"]["properties"]


def test_old_idempotency_keys_are_purged_and_recent_ones_kept(api_client, camera, partitions):
    from django.utils import timezone

    from telemetry.models import IdempotencyKey
    from telemetry.services.ingest import idempotency_keys_purge

    for index in range(3):
        post_frames(api_client, [frame_payload(camera, index)], HTTP_IDEMPOTENCY_KEY=f"k{index}")
    IdempotencyKey.objects.filter(key__in=["k0", "k1"]).update(created_at=timezone.now() - timedelta(days=2))

    deleted = idempotency_keys_purge(older_than=timezone.now() - timedelta(days=1), batch_size=1)

    assert deleted == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["k2"]


def test_the_hourly_job_purges_keys_past_their_ttl_and_is_scheduled(api_client, camera, partitions, settings):
    import importlib

    from django.apps import apps as django_apps
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from telemetry import tasks
    from telemetry.models import IdempotencyKey

    settings.TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS = 24
    for index in range(3):
        post_frames(api_client, [frame_payload(camera, index)], HTTP_IDEMPOTENCY_KEY=f"k{index}")
    IdempotencyKey.objects.filter(key="k0").update(created_at=timezone.now() - timedelta(hours=25))

    outcome = tasks.purge_idempotency_keys()

    assert (outcome["outcome"], outcome["deleted"]) == ("succeeded", 1)
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["k1", "k2"]
    # The migration's own function: rows a data migration made may have been wiped by a transactional flush.
    migration = importlib.import_module("telemetry.migrations.0006_idempotency_key_purge_schedule")
    PeriodicTask.objects.filter(task=tasks.PURGE_IDEMPOTENCY_KEYS).delete()
    migration.create_schedule(django_apps, None)
    migration.create_schedule(django_apps, None)
    task = PeriodicTask.objects.get(task=tasks.PURGE_IDEMPOTENCY_KEYS)
    assert (task.interval.every, task.interval.period) == (1, "hours")
