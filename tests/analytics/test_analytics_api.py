"""GET /api/v1/analytics/{hourly,daily,detections}: answers equal the raw-table aggregates for the same window,
come from the rollups only, and bad filters get a 4xx JSON detail."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import ApiClient

from .conftest import raw_detection_aggregates, raw_frame_aggregates
from .test_rollups import policy, start_watermark

pytestmark = pytest.mark.django_db

RAW_TABLE = re.compile(r'(FROM|JOIN)\s+"?(frame_metadata|detections|system_metrics)"?(\s|$)', re.IGNORECASE)


@pytest.fixture
def rolled_up(fleet, now, make_frames):
    """Two days of frames (yesterday from 06:00 to now), rolled up."""
    start = now.replace(hour=6, minute=0) - timedelta(days=1)
    make_frames(fleet.camera_ids, start=start, end=now, per_camera=900)
    start_watermark(start)
    from telemetry.services.rollups import rollups_refresh

    rollups_refresh(now=now, policy=policy())
    return start


@pytest.fixture
def reader(make_api_key):
    return ApiClient(make_api_key("telemetry:read").raw_key)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_hourly_for_a_camera_equals_the_raw_aggregate_of_each_hour(fleet, now, rolled_up, reader):
    # Given rolled-up frames and a camera
    camera = fleet.cameras[0]
    since, until = now.replace(minute=0) - timedelta(hours=6), now

    # When its hourly analytics are read
    response = reader.get(
        "/api/v1/analytics/hourly", {"camera_id": str(camera.id), "since": iso(since), "until": iso(until)}
    )

    # Then each hour equals the raw aggregate: counts, failures, mean, exact p95, max and detections
    assert response.status_code == 200, response.content
    body = response.json()
    raw = {bucket: value for (scope, key, bucket), value in raw_frame_aggregates("hour", since, now).items()
           if scope == "camera" and key == camera.id}  # fmt: skip
    assert [b["bucket"] for b in body["buckets"]] == [iso(bucket) for bucket in sorted(raw)]
    for bucket in body["buckets"]:
        expected = raw[next(b for b in raw if iso(b) == bucket["bucket"])]
        assert bucket["frames"] == expected["frames"]
        assert bucket["failed_frames"] == expected["failed_frames"]
        assert bucket["failure_rate"] == pytest.approx(expected["failed_frames"] / expected["frames"])
        assert bucket["mean_processing_time_ms"] == pytest.approx(expected["mean"], rel=1e-9)
        assert bucket["p95_processing_time_ms"] == pytest.approx(expected["p95"], rel=1e-12)
        assert bucket["max_processing_time_ms"] == expected["max"]
        assert bucket["detections"] == expected["detections"]
    assert body["scope"] == "camera"
    assert body["scope_id"] == str(camera.id)
    assert body["zones"] == []
    assert body["complete_until"] == iso(now)
    # and the totals over the window equal one raw aggregate over all of it
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE processing_status = 'failed'), avg(processing_time_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms) FROM frame_metadata "
            "WHERE camera_id = %s AND timestamp >= %s AND timestamp < %s",
            [camera.id, since, now],
        )
        frames, failed, mean, p95 = cursor.fetchone()
    totals = body["totals"]
    assert (totals["frames"], totals["failed_frames"]) == (frames, failed)
    assert totals["mean_processing_time_ms"] == pytest.approx(mean, rel=1e-9)
    assert totals["p95_exact"] is False
    assert totals["p95_processing_time_ms"] == pytest.approx(p95, rel=0.01)
    assert all(bucket["p95_exact"] for bucket in body["buckets"])


def test_hourly_for_the_fleet_has_zone_level_totals_equal_to_the_raw_ones(fleet, now, rolled_up, reader):
    # Given rolled-up frames in two zones and one camera without a zone
    since = now.replace(minute=0) - timedelta(hours=12)

    # When the fleet's hourly analytics are read
    response = reader.get("/api/v1/analytics/hourly", {"since": iso(since), "until": iso(now)})

    # Then every hour is the fleet's raw aggregate and each zone's totals are its cameras' raw totals
    assert response.status_code == 200, response.content
    body = response.json()
    raw = raw_frame_aggregates("hour", since, now)
    fleet_raw = {iso(bucket): value for (scope, _key, bucket), value in raw.items() if scope == "fleet"}
    assert {b["bucket"]: (b["frames"], b["failed_frames"]) for b in body["buckets"]} == {
        bucket: (value["frames"], value["failed_frames"]) for bucket, value in fleet_raw.items()
    }
    for bucket in body["buckets"]:
        assert bucket["p95_processing_time_ms"] == pytest.approx(fleet_raw[bucket["bucket"]]["p95"], rel=1e-12)
    zones = {zone["zone_name"]: zone for zone in body["zones"]}
    assert set(zones) == {"north", "south", "(no zone)"}
    for name, zone_id in (("north", fleet.north.id), ("south", fleet.south.id), ("(no zone)", None)):
        frames = sum(v["frames"] for (scope, key, _), v in raw.items() if scope == "zone" and key == zone_id)
        failed = sum(v["failed_frames"] for (scope, key, _), v in raw.items() if scope == "zone" and key == zone_id)
        assert (zones[name]["frames"], zones[name]["failed_frames"]) == (frames, failed)
        assert zones[name]["zone_id"] == (str(zone_id) if zone_id else None)


def test_hourly_for_a_zone_is_its_cameras_taken_together(fleet, now, rolled_up, reader):
    since = now.replace(minute=0) - timedelta(hours=3)
    response = reader.get(
        "/api/v1/analytics/hourly", {"zone_id": str(fleet.north.id), "since": iso(since), "until": iso(now)}
    )
    assert response.status_code == 200, response.content
    raw = {iso(bucket): value for (scope, key, bucket), value in raw_frame_aggregates("hour", since, now).items()
           if scope == "zone" and key == fleet.north.id}  # fmt: skip
    buckets = response.json()["buckets"]
    assert len(buckets) == len(raw) == 4
    for bucket in buckets:
        assert bucket["frames"] == raw[bucket["bucket"]]["frames"]
        assert bucket["p95_processing_time_ms"] == pytest.approx(raw[bucket["bucket"]]["p95"], rel=1e-12)


def test_daily_equals_the_raw_day_aggregates(fleet, now, rolled_up, reader):
    # Given rolled-up frames over yesterday and today
    since = now.replace(hour=0, minute=0) - timedelta(days=1)

    # When the daily analytics of one camera are read
    camera = fleet.cameras[1]
    response = reader.get(
        "/api/v1/analytics/daily", {"camera_id": str(camera.id), "since": iso(since), "until": iso(now)}
    )

    # Then each day's counts, failures, mean and detections equal the raw day, p95 within the histogram's 1 %,
    # flagged as an estimate
    assert response.status_code == 200, response.content
    raw = {iso(bucket): value for (scope, key, bucket), value in raw_frame_aggregates("day", since, now).items()
           if scope == "camera" and key == camera.id}  # fmt: skip
    buckets = response.json()["buckets"]
    assert [b["bucket"] for b in buckets] == sorted(raw)
    for bucket in buckets:
        expected = raw[bucket["bucket"]]
        assert (bucket["frames"], bucket["failed_frames"], bucket["detections"]) == (
            expected["frames"], expected["failed_frames"], expected["detections"],
        )  # fmt: skip
        assert bucket["mean_processing_time_ms"] == pytest.approx(expected["mean"], rel=1e-9)
        assert bucket["p95_processing_time_ms"] == pytest.approx(expected["p95"], rel=0.01)
        assert bucket["p95_exact"] is False


def test_detections_by_type_equal_the_raw_counts_and_filter_by_object_type(fleet, now, rolled_up, reader):
    since = now.replace(minute=0) - timedelta(hours=4)
    raw = raw_detection_aggregates("hour", since, now)

    # When the fleet's detections per hour are read, for cars and buses only
    response = reader.get(
        "/api/v1/analytics/detections",
        {"since": iso(since), "until": iso(now), "object_type": ["car", "bus"]},
    )

    # Then every (hour, type) count and the totals per type equal the raw counts, other types left out
    assert response.status_code == 200, response.content
    body = response.json()
    expected = {(iso(bucket), kind): count for (scope, _k, bucket, kind), (count, _c) in raw.items()
                if scope == "fleet" and kind in {"car", "bus"}}  # fmt: skip
    assert {(b["bucket"], b["object_type"]): b["detections"] for b in body["buckets"]} == expected
    totals = {row["object_type"]: row["detections"] for row in body["totals"]}
    assert totals == {kind: sum(count for (_b, k), count in expected.items() if k == kind) for kind in ("car", "bus")}
    # and zone-level totals per type equal the raw ones
    zone_totals = {(z["zone_name"], z["object_type"]): z["detections"] for z in body["zones"]}
    north_cars = sum(c for (scope, key, _b, kind), (c, _) in raw.items()
                     if scope == "zone" and key == fleet.north.id and kind == "car")  # fmt: skip
    assert zone_totals[("north", "car")] == north_cars


def test_detections_by_day_for_a_camera(fleet, now, rolled_up, reader):
    since = now.replace(hour=0, minute=0) - timedelta(days=1)
    camera = fleet.cameras[3]
    response = reader.get(
        "/api/v1/analytics/detections",
        {"since": iso(since), "until": iso(now), "camera_id": str(camera.id), "granularity": "day"},
    )
    assert response.status_code == 200, response.content
    raw = {(iso(bucket), kind): count for (scope, key, bucket, kind), (count, _) in
           raw_detection_aggregates("day", since, now).items() if scope == "camera" and key == camera.id}  # fmt: skip
    assert {(b["bucket"], b["object_type"]): b["detections"] for b in response.json()["buckets"]} == raw


@pytest.mark.parametrize(
    "path", ["/api/v1/analytics/hourly", "/api/v1/analytics/daily", "/api/v1/analytics/detections"]
)
def test_analytics_read_rollups_only_in_a_fixed_number_of_queries(fleet, now, rolled_up, reader, path):
    # When any analytics endpoint answers for the fleet
    with CaptureQueriesContext(connection) as queries:
        response = reader.get(path, {"since": iso(now - timedelta(days=2)), "until": iso(now)})

    # Then it never touched a raw partitioned table, and its query count does not grow with the data
    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if RAW_TABLE.search(sql)]
    assert len(statements) <= 7, statements


def test_an_hourly_answer_uses_the_scope_index_not_a_sequential_scan(fleet, now, rolled_up):
    with connection.cursor() as cursor:
        # Statistics as the planner will have them in production (autovacuum analyses the rollup tables); without
        # this the plan depends on whether autovacuum happened to reach the test table yet.
        cursor.execute("ANALYZE telemetry_rollup_frames_hour")
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test table is tiny: ask what an index would do
        cursor.execute(
            "EXPLAIN SELECT * FROM telemetry_rollup_frames_hour WHERE scope = 'camera' AND scope_id = %s "
            "AND bucket >= %s AND bucket < %s ORDER BY bucket",
            [fleet.cameras[0].id, now - timedelta(days=1), now],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "rollup_fhour_key" in plan


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"since": "2026-11-20T10:00:00", "until": "2026-11-21T10:00:00"}, "time zone"),
        ({"since": "2026-11-21T10:00:00Z", "until": "2026-11-20T10:00:00Z"}, "before until"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, "longer than 31 days"),
        ({"camera_id": "00000000-0000-0000-0000-00000000abcd"}, "unknown camera"),
        ({"zone_id": "00000000-0000-0000-0000-00000000abcd"}, "unknown zone"),
        ({"camera_id": "not-a-uuid"}, "camera_id"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_filters_are_refused_with_a_json_detail(fleet, reader, params, fragment):
    response = reader.get("/api/v1/analytics/hourly", params)
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


def test_camera_and_zone_together_are_refused(fleet, reader):
    response = reader.get(
        "/api/v1/analytics/daily", {"camera_id": str(fleet.cameras[0].id), "zone_id": str(fleet.north.id)}
    )
    assert response.status_code == 422
    assert "not both" in response.json()["detail"]


def test_detections_granularity_must_be_hour_or_day(fleet, reader):
    response = reader.get("/api/v1/analytics/detections", {"granularity": "minute"})
    assert response.status_code == 422


def test_analytics_need_a_key_with_telemetry_read(fleet, make_api_key):
    assert ApiClient().get("/api/v1/analytics/hourly").status_code == 401
    writer = ApiClient(make_api_key("telemetry:write").raw_key)
    response = writer.get("/api/v1/analytics/hourly")
    assert response.status_code == 403
    assert "telemetry:read" in response.json()["detail"]


def test_an_empty_range_answers_zero_totals(fleet, reader, now):
    response = reader.get("/api/v1/analytics/hourly", {"since": iso(now - timedelta(hours=2)), "until": iso(now)})
    assert response.status_code == 200
    body = response.json()
    assert body["buckets"] == []
    assert body["totals"]["frames"] == 0
    assert body["totals"]["mean_processing_time_ms"] is None
    assert body["totals"]["p95_processing_time_ms"] is None
