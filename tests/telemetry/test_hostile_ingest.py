"""Hostile ingest: every number has a physical range (its_camera/limits.py), timestamps an acceptance window,
JSON a depth limit; a refused batch writes nothing, and nothing accepted can break later writes or jobs."""

import json
import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from its_camera import limits
from telemetry.models import Detection, FrameMetadata, SystemMetric
from telemetry.selectors.timeline import frame_detections
from telemetry.services.batches import BatchRejected, frame_statuses_decode, frames_decode, metrics_decode
from telemetry.services.rollups import rollups_rebuild
from tests.telemetry.conftest import frame_payload, table_counts

FRAMES_URL = "/api/v1/frames"
METRICS_URL = "/api/v1/metrics"
NOW = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)  # five past midnight on the first of a month
PROPERTIES = hypothesis_settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def outcome(decode, *args, **kwargs):
    """(decoded, None) or (None, the refusal's HTTP status)."""
    try:
        return decode(*args, **kwargs), None
    except BatchRejected as rejected:
        return None, rejected.status


def post(client, url, rows, **extra):
    return client.post(url, data=json.dumps(rows), content_type="application/json", **extra)


# --- 1. Physical ranges ---------------------------------------------------------------------------------------


def test_the_bbox_that_poisoned_the_gist_index_is_refused_and_nothing_is_written(api_client, camera, partitions):
    # Given a batch whose last frame carries the bbox
    frames = [frame_payload(camera, index) for index in range(3)]
    frames[2]["detections"][0]["bbox"] = [-1e308, -1e308, 1e308, 1e308]
    before = table_counts()

    response = post(api_client, FRAMES_URL, frames)

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert (error["row"], error["field"]) == (2, "detections[0].bbox[0]")
    assert table_counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("processing_time_ms", 1e308),
        ("processing_time_ms", limits.PROCESSING_TIME_MS_MAX + 1),
        ("width", 0),
        ("height", limits.PIXELS_MAX + 1),
        ("quality_score", 1.5),
        ("frame_number", -1),
    ],
)
def test_every_frame_number_field_has_a_physical_range(api_client, camera, partitions, field, value):
    before = table_counts()

    response = post(api_client, FRAMES_URL, [frame_payload(camera, 0, **{field: value})])

    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] == field
    assert table_counts() == before


@pytest.mark.parametrize("value", [1e308, -1e308, limits.METRIC_VALUE_ABS_MAX * 10])
def test_a_metric_value_past_its_range_is_refused(api_client, camera, partitions, value):
    metric = {"timestamp": datetime.now(UTC).isoformat(), "name": "fps", "value": value, "camera_id": str(camera.id)}

    response = post(api_client, METRICS_URL, [metric])

    assert response.status_code == 422
    assert SystemMetric.objects.count() == 0


def test_values_at_the_edge_of_every_range_do_not_break_later_writes_or_rollups(api_client, camera, partitions):
    # Given a batch whose every number sits at the edge of its range: 200 detections of the widest boxes
    edge = frame_payload(camera, 0, detections=0, processing_time_ms=limits.PROCESSING_TIME_MS_MAX, width=32767)
    edge["detections"] = [
        {
            "object_type": "car",
            "confidence": 1.0,
            "bbox": [limits.BBOX_COORDINATE_MIN, limits.BBOX_COORDINATE_MIN] + [limits.BBOX_COORDINATE_MAX] * 2,
            "track_id": 2**63 - 1,
        }
    ] * 200
    assert post(api_client, FRAMES_URL, [edge]).status_code == 201
    metric = {"timestamp": edge["timestamp"], "name": "bytes", "value": limits.METRIC_VALUE_ABS_MAX}
    assert post(api_client, METRICS_URL, [metric] * 1 + [{**metric, "name": "other"}]).status_code == 201

    # When ordinary batches follow (the GiST index splits its pages as it grows)
    for batch in range(5):
        frames = [frame_payload(camera, 10 + batch * 50 + index, detections=5) for index in range(50)]
        response = post(api_client, FRAMES_URL, frames)
        assert response.status_code == 201, response.content

    # Then they are stored, and the rollups aggregate every row without overflowing
    assert Detection.objects.count() == 200 + 5 * 50 * 5
    moment = datetime.fromisoformat(edge["timestamp"])
    rollups_rebuild(since=moment - timedelta(hours=2), until=moment + timedelta(hours=2))


finite = st.floats(allow_nan=False, allow_infinity=False)
any_float = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.sampled_from([1e308, -1e308, 5e-324])


@PROPERTIES
@given(
    bbox=st.lists(any_float, min_size=4, max_size=4),
    confidence=any_float,
    processing_time=any_float,
    quality=any_float,
    width=st.integers(-(2**40), 2**40),
    track_id=st.integers(-(2**70), 2**70),
)
def test_property_a_decoded_frame_holds_only_values_inside_their_ranges(
    bbox, confidence, processing_time, quality, width, track_id
):
    frame = {
        "camera_id": "8c9ff1f0-71c3-4b88-972e-bd4d2caea360",
        "timestamp": NOW.isoformat(),
        "processing_time_ms": processing_time,
        "quality_score": quality,
        "width": width,
        "detections": [{"object_type": "car", "confidence": confidence, "bbox": bbox, "track_id": track_id}],
    }
    batch, status = outcome(frames_decode, json.dumps([frame]).encode(), now=NOW)
    if status is not None:
        assert status == 422
        return
    (decoded,), ((detection,),) = batch.frames, batch.detections
    assert all(limits.BBOX_COORDINATE_MIN <= value <= limits.BBOX_COORDINATE_MAX for value in detection.bbox)
    assert 0 <= detection.confidence <= 1
    assert 0 <= decoded.processing_time_ms <= limits.PROCESSING_TIME_MS_MAX
    assert 0 <= decoded.quality_score <= 1
    assert 1 <= decoded.width <= limits.PIXELS_MAX
    assert abs(detection.track_id) <= limits.INT64_MAX


@PROPERTIES
@given(value=any_float)
def test_property_a_decoded_metric_value_is_inside_its_range(value):
    body = json.dumps([{"timestamp": NOW.isoformat(), "name": "m", "value": value}]).encode()
    metrics, status = outcome(metrics_decode, body, now=NOW)
    if status is not None:
        assert status == 422
        return
    (metric,) = metrics
    assert math.isfinite(metric.value)
    assert abs(metric.value) <= limits.METRIC_VALUE_ABS_MAX


# --- 4. Timestamps ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:30:00+01:00",  # year 1 BC in UTC
        "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
        "1900-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    ],
)
def test_timestamps_no_camera_can_send_are_refused_with_422(api_client, camera, partitions, timestamp):
    before = table_counts()

    response = post(api_client, FRAMES_URL, [frame_payload(camera, 0, timestamp=timestamp)])

    assert response.status_code == 422, response.content
    error = response.json()["detail"][0]
    assert (error["row"], error["field"]) == (0, "timestamp")
    assert "timestamps must be between" in error["message"]
    assert table_counts() == before


@pytest.mark.parametrize("now", [NOW, datetime(2026, 11, 30, 23, 55, tzinfo=UTC)])
def test_the_window_takes_late_rows_and_a_fast_clock_and_refuses_beyond(now, settings):
    def decode(moment: datetime) -> None:
        row = {"camera_id": "8c9ff1f0-71c3-4b88-972e-bd4d2caea360", "timestamp": moment.isoformat()}
        frames_decode(json.dumps([row]).encode(), now=now)

    decode(now - timedelta(days=settings.TELEMETRY_ACCEPT_PAST_DAYS))  # the oldest late row accepted
    decode(now + timedelta(minutes=settings.TELEMETRY_ACCEPT_FUTURE_MINUTES))  # a camera clock ahead
    for refused in (
        now - timedelta(days=settings.TELEMETRY_ACCEPT_PAST_DAYS, seconds=1),
        now + timedelta(minutes=settings.TELEMETRY_ACCEPT_FUTURE_MINUTES, seconds=1),
    ):
        with pytest.raises(BatchRejected) as rejected:
            decode(refused)
        assert rejected.value.status == 422


def frame_statuses_decode_with_status(body: bytes):
    rows = json.loads(body)
    for row in rows:
        row["processing_status"] = "failed"
    return frame_statuses_decode(json.dumps(rows).encode(), now=NOW)


def _frames_decode_at_now(body: bytes):
    return frames_decode(body, now=NOW).frames


@PROPERTIES
@given(moment=st.datetimes(timezones=st.just(UTC)))
def test_property_every_accepted_timestamp_is_inside_the_window(moment):
    body = json.dumps([{"camera_id": "8c9ff1f0-71c3-4b88-972e-bd4d2caea360", "timestamp": moment.isoformat()}])
    for decode in (_frames_decode_at_now, frame_statuses_decode_with_status):
        rows, status = outcome(decode, body.encode())
        if status is not None:
            assert status == 422
            continue
        window = limits.timestamp_window(now=NOW)
        assert all(window.earliest <= row.timestamp <= window.latest for row in rows)


@PROPERTIES
@given(offset_minutes=st.integers(-(15 * 60 + 59), 15 * 60 + 59), year=st.sampled_from([1, 2, 1970, 2026, 9999]))
def test_property_any_offset_and_year_is_a_422_or_inside_the_window_never_an_error(offset_minutes, year):
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "-" if offset_minutes < 0 else "+"
    text = f"{year:04d}-12-01T00:05:00{sign}{hours:02d}:{minutes:02d}"
    body = json.dumps([{"camera_id": "8c9ff1f0-71c3-4b88-972e-bd4d2caea360", "timestamp": text}]).encode()
    frames, status = outcome(_frames_decode_at_now, body)
    if status is not None:
        assert status == 422
        return
    (frame,) = frames
    assert frame.timestamp in limits.timestamp_window(now=NOW)


# --- 2. JSON depth ------------------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
def test_deep_unknown_keys_in_detections_are_refused_at_any_depth(api_client, camera, partitions, depth):
    frame = json.dumps(frame_payload(camera, 0))
    body = frame.replace('"track_id"', f'"extra": {nested(depth)}, "track_id"', 1)
    before = table_counts()

    for content_type, payload in (("application/json", f"[{body}]"), ("application/x-ndjson", body + "\n")):
        response = api_client.post(FRAMES_URL, data=payload, content_type=content_type)
        assert response.status_code == 422, response.content
        assert "nested deeper than" in json.dumps(response.json()) or "nested too deeply" in json.dumps(response.json())
    assert table_counts() == before


@pytest.mark.parametrize("url", [FRAMES_URL, METRICS_URL, "/api/v1/frames/status"])
def test_a_whole_body_nested_past_the_parser_is_a_422_not_a_500(api_client, url):
    response = api_client.generic(
        "PATCH" if url.endswith("status") else "POST", url, nested(100_000), content_type="application/json"
    )

    assert response.status_code == 422


def stored_detections() -> list[dict]:
    """The one stored frame's detections, as the frames API gives them back (detection rows and attributes)."""
    frame = FrameMetadata.objects.get()
    return frame_detections(camera_id=frame.camera_id, timestamps=[frame.timestamp])[frame.timestamp]


def test_detections_nested_within_the_limit_are_stored_as_received(api_client, camera, partitions):
    frame = frame_payload(camera, 0, detections=1)
    frame["detections"][0]["attributes"] = {"colour": {"primary": ["red", {"shade": 3}]}}

    response = post(api_client, FRAMES_URL, [frame])

    assert response.status_code == 201
    assert stored_detections()[0]["attributes"] == frame["detections"][0]["attributes"]


@PROPERTIES
@given(depth=st.integers(1, 3000))
def test_property_detections_of_any_depth_are_refused_past_the_limit_or_stored_within_it(depth):
    extra = nested(depth)
    detection = '{"object_type":"car","confidence":0.5,"bbox":[1,2,3,4],"extra":' + extra + "}"
    body = f'[{{"camera_id":"8c9ff1f0-71c3-4b88-972e-bd4d2caea360","timestamp":"{NOW.isoformat()}",'
    body += f'"detections":[{detection}]}}]'
    batch, status = outcome(frames_decode, body.encode(), now=NOW)
    if status is not None:
        assert status == 422
        assert depth + 2 > 32
        return
    stored = msgspec.json.decode(batch.frames[0].detections)
    assert limits.json_depth(stored) <= 32


def test_brackets_inside_strings_are_not_nesting(api_client, camera, partitions):
    # Given detections whose text holds many brackets (the quick count over the body sees them, the parse does not)
    frame = frame_payload(camera, 0, detections=2)
    frame["detections"][1]["note"] = "[{" * 200

    response = post(api_client, FRAMES_URL, [frame])

    assert response.status_code == 201, response.content
    assert stored_detections()[1]["note"] == "[{" * 200
