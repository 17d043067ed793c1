"""The admin's operations pages: the database health page and the live fleet status page."""

from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from its_camera import events
from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db


def test_the_admin_index_links_the_operations_pages(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="operations-pages"' in page
    assert reverse("operations-health") in page
    assert reverse("admin:cameras_camera_fleet_status") in page


def test_the_health_page_shows_every_monitoring_section(admin_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(40):
        response = admin_client.get(reverse("operations-health"))

    assert response.status_code == 200
    sections = {section.key: section for section in response.context["sections"]}
    assert set(sections) == {
        "pool",
        "activity",
        "long-running",
        "statements",
        "index-usage",
        "unused-indexes",
        "table-sizes",
        "partition-sizes",
        "live-events",
    }
    assert not any(section.error for section in sections.values()), [s.error for s in sections.values() if s.error]
    activity = sections["activity"]
    assert activity.columns == ["application_name", "state", "connections", "longest_in_state"]
    assert any(row[0] == "its_camera_ai" for row in activity.rows)  # this very connection
    tables = {row[0] for row in sections["table-sizes"].rows}
    assert {"cameras", "alerts", "zones"} <= tables
    index_usage = sections["index-usage"]
    assert index_usage.columns[:3] == ["table_name", "index_name", "idx_scan"]
    assert 0 < len(index_usage.rows) <= 50
    assert all(len(section.rows) <= 50 for section in sections.values())


def test_without_pg_stat_statements_the_page_says_how_to_enable_it(admin_client):
    response = admin_client.get(reverse("operations-health"), {"statements_contains": "frame_metadata"})

    statements = next(section for section in response.context["sections"] if section.key == "statements")
    if statements.rows:  # the extension is installed on this server: the filter applies
        assert all("frame_metadata" in row[0].lower() for row in statements.rows)
    else:
        assert "shared_preload_libraries" in statements.note
        assert "CREATE EXTENSION pg_stat_statements" in statements.note
        assert "CREATE EXTENSION pg_stat_statements" in response.content.decode()


def test_operations_pages_are_for_staff_only(client, django_user_model):
    assert client.get(reverse("operations-health")).status_code == 302
    assert client.get(reverse("operations-fleet-snapshot")).status_code == 302
    client.force_login(django_user_model.objects.create_user("viewer", password="x", is_staff=False))
    assert client.get(reverse("operations-health")).status_code == 302


def test_the_fleet_snapshot_counts_cameras_by_zone_with_the_event_id_to_resume_from(admin_client, live_redis):
    zone = make_zone(name="Centre")
    now = timezone.now()
    make_camera(zone=zone, last_seen_at=now - timedelta(seconds=5))
    make_camera(zone=zone, last_seen_at=now - timedelta(seconds=100))
    make_camera(last_seen_at=None)
    events.event_publish(type="alert.raised", data={})

    body = admin_client.get(reverse("operations-fleet-snapshot")).json()

    assert body["last_event_id"] == 1
    zones = {row["zone_name"]: row for row in body["zones"]}
    assert zones["Centre"] | {"zone_id": None} == {
        "zone_id": None,
        "zone_name": "Centre",
        "streaming": 1,
        "recent": 1,
        "stale": 0,
        "open_alerts": 0,
    }
    assert zones["Centre"]["zone_id"] == str(zone.pk)
    assert zones["(no zone)"]["stale"] == 1


def test_the_fleet_status_page_updates_live_with_a_vendored_chart_library(admin_client):
    page = admin_client.get(reverse("admin:cameras_camera_fleet_status")).content.decode()

    assert 'id="fleet-live"' in page
    assert f'data-stream-url="{reverse("camera-status-stream")}"' in page
    assert "/static/vendor/chartjs/chart.umd.min.js" in page
    assert "/static/operations/fleet_live.js" in page
    assert "cdn" not in page.lower()
    chart = finders.find("vendor/chartjs/chart.umd.min.js")
    assert chart
    with open(chart) as script:
        assert "Chart.js v4.6.1" in script.read(300)
    assert finders.find("vendor/chartjs/LICENSE.md")
