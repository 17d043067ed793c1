"""The admin's ingest and detections dashboard: numbers equal the raw data, every query is bounded and reads
rollups only, and the page costs the same number of queries whatever the data size."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cameras.choices import AlertKind
from cameras.models import Camera
from cameras.services.alerts import alert_raise
from telemetry.services.rollups import rollups_refresh

from .conftest import insert_frames
from .test_analytics_api import RAW_TABLE
from .test_rollups import policy, start_watermark

pytestmark = pytest.mark.django_db


@pytest.fixture
def dashboard_url():
    return reverse("admin:telemetry_analytics_dashboard")


def roll_up(fleet, now, make_frames, *, per_camera, seed=3):
    start = now.replace(minute=0) - timedelta(hours=5)
    make_frames(fleet.camera_ids, start=start, end=now, per_camera=per_camera, seed=seed)
    start_watermark(start)
    rollups_refresh(now=now, policy=policy())
    return start


def raw_scalar(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_the_dashboard_shows_ingest_detections_slowest_cameras_and_alerts_equal_to_the_raw_data(
    fleet, now, make_frames, admin_client, dashboard_url
):
    # Given five hours of frames rolled up, and an open alert
    start = roll_up(fleet, now, make_frames, per_camera=200)
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=fleet.cameras[0], message="n-1 silent for 10 min")

    # When an operator opens the dashboard
    response = admin_client.get(dashboard_url)

    # Then the 24-hour totals are the raw totals
    assert response.status_code == 200
    context = response.context
    assert context["frames_24h"] == raw_scalar("SELECT count(*) FROM frame_metadata WHERE timestamp >= %s", [start])
    assert context["failed_24h"] == raw_scalar(
        "SELECT count(*) FROM frame_metadata WHERE timestamp >= %s AND processing_status = 'failed'", [start]
    )
    # and detections by class are the raw counts, largest first
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT object_type, count(*) FROM detections WHERE timestamp >= %s GROUP BY 1 ORDER BY 2 DESC, 1",
            [start],
        )
        assert [(row["object_type"], row["detections"]) for row in context["detections"]] == cursor.fetchall()
    # and the slowest cameras are in the raw order of mean processing time
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT camera_id, avg(processing_time_ms) FROM frame_metadata WHERE timestamp >= %s "
            "AND processing_time_ms IS NOT NULL GROUP BY 1 ORDER BY 2 DESC",
            [start],
        )
        raw_order = cursor.fetchall()
    assert [row["camera_id"] for row in context["slowest"]] == [camera_id for camera_id, _ in raw_order]
    assert context["slowest"][0]["mean_processing_time_ms"] == pytest.approx(raw_order[0][1], rel=1e-9)
    # and the open alert is listed, the charts' data is embedded and the vendored chart library is used
    html = response.content.decode()
    assert "n-1 silent for 10 min" in html
    assert 'id="analytics-charts"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "cdn" not in html.lower()
    ingest_chart = context["charts"]["ingest"]
    assert len(ingest_chart["labels"]) == 24
    assert context["charts"]["detections"]["counts"] == [row["detections"] for row in context["detections"]]


def test_the_dashboard_runs_the_same_bounded_queries_on_rollups_whatever_the_data_size(
    fleet, now, make_frames, admin_client, dashboard_url
):
    # Given a small fleet's data
    roll_up(fleet, now, make_frames, per_camera=20)
    admin_client.get(dashboard_url)  # warm the session
    with CaptureQueriesContext(connection) as small:
        assert admin_client.get(dashboard_url).status_code == 200

    # When there are ten times the frames and twenty more cameras with alerts
    more = [Camera.objects.create(name=f"extra-{n}", zone=fleet.north) for n in range(20)]
    for camera in more:
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="silent")
    start = now.replace(minute=0) - timedelta(hours=5)
    insert_frames([(camera.id, start + timedelta(seconds=n * 7), "completed", 5.0 + n, 1) for camera in more
                   for n in range(100)])  # fmt: skip
    roll_up(fleet, now, make_frames, per_camera=200, seed=4)
    with CaptureQueriesContext(connection) as large:
        assert admin_client.get(dashboard_url).status_code == 200

    # Then the page ran the same number of queries, none on a raw partitioned table
    assert len(large.captured_queries) == len(small.captured_queries) <= 12
    statements = [query["sql"] for query in large.captured_queries]
    assert not [sql for sql in statements if RAW_TABLE.search(sql)]
    # and every rollup query is bounded by a time range and a scope
    rollup_queries = [sql for sql in statements if "telemetry_rollup_" in sql and "watermarks" not in sql]
    assert len(rollup_queries) == 4
    for sql in rollup_queries:
        assert re.search(r'"bucket" >= ', sql)
        assert '"scope" = ' in sql


@pytest.mark.parametrize(
    ("sql", "indexes"),
    [
        (
            "SELECT scope_id, sum(processing_time_sum) FROM telemetry_rollup_frames_hour "
            "WHERE scope = 'camera' AND bucket >= now() - interval '24 hours' GROUP BY 1",
            ("rollup_fhour_scope_bucket", "rollup_fhour_key"),
        ),
        (
            "SELECT object_type, sum(detections) FROM telemetry_rollup_detections_hour "
            "WHERE scope = 'fleet' AND scope_id = '00000000-0000-0000-0000-000000000000' "
            "AND bucket >= now() - interval '24 hours' GROUP BY 1",
            ("rollup_dhour_key", "rollup_dhour_scope_bucket"),
        ),
        (
            "SELECT * FROM alerts WHERE state IN ('open', 'acknowledged') ORDER BY opened_at DESC LIMIT 20",
            ("idx_alerts_state_opened", "alerts_one_active_per_subject"),
        ),
    ],
)
def test_the_dashboard_queries_use_their_indexes(fleet, sql, indexes):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask what the planner would do at scale
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert any(index in plan for index in indexes), plan


def test_the_rollup_status_changelist_links_the_dashboard(fleet, now, admin_client, dashboard_url):
    start_watermark(now - timedelta(minutes=5))
    response = admin_client.get(reverse("admin:telemetry_rollupwatermark_changelist"))
    assert response.status_code == 200
    assert dashboard_url in response.content.decode()


def test_staff_without_view_permission_cannot_open_the_dashboard(fleet, client, django_user_model, dashboard_url):
    user = django_user_model.objects.create_user("clerk", password="x-secret-123", is_staff=True)
    client.force_login(user)
    assert client.get(dashboard_url).status_code == 403


def test_anonymous_users_are_sent_to_the_login_page(client, dashboard_url):
    response = client.get(dashboard_url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
