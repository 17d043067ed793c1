"""An operator's walk through the admin in a real browser: Debian's Chromium driven by Playwright
(no browser download), against a live server on the test database. Screenshots of each page are
saved under test-artifacts/screenshots/ for a person to look at."""

import pytest
from django.urls import reverse

from cameras.choices import CameraStatus
from cameras.models import Camera, Zone

from .support import CHROMIUM, sign_in, snap

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)"
)


def test_operator_logs_in_creates_a_zone_and_a_camera_and_runs_a_bulk_action(page):
    sign_in(page)
    snap(page, "01-admin-index")

    page.goto(reverse("admin:cameras_zone_add"))
    page.fill("#id_name", "Harbour district")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Zone.objects.filter(name="Harbour district").exists()

    page.goto(reverse("admin:cameras_camera_add"))
    page.fill("#id_name", "Harbour Rd / Quay St")
    page.fill("#id_location", "Harbour Rd at Quay St")
    page.fill("#id_latitude", "59.9")
    page.fill("#id_longitude", "10.7")
    page.select_option("#id_zone", label="Harbour district")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    camera = Camera.objects.get(name="Harbour Rd / Quay St")
    assert camera.zone is not None
    assert camera.zone.name == "Harbour district"
    snap(page, "02-camera-created")

    page.goto(reverse("admin:cameras_camera_changelist"))
    page.check(f"input[name=_selected_action][value='{camera.pk}']")
    page.select_option("select[name=action]", "set_maintenance")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    camera.refresh_from_db()
    assert camera.status == CameraStatus.MAINTENANCE
    snap(page, "03-bulk-maintenance")

    page.goto(reverse("admin:cameras_camera_fleet_status"))
    assert page.locator("h1").first.inner_text() == "Fleet status"
    snap(page, "04-fleet-status")


@pytest.mark.parametrize(
    ("name", "url_name", "heading"),
    [
        ("05-ingest-dashboard", "admin:telemetry_analytics_dashboard", "Ingest and detections"),
        ("06-partition-health", "admin:archival_partitionhealth_changelist", "Partition health"),
        ("07-database-health", "operations-health", "Database health"),
        ("08-archive-runs", "admin:archival_archiverun_changelist", "archive run"),
        ("09-alerts", "admin:cameras_alert_changelist", "alert"),
    ],
)
def test_operator_opens_the_dashboards_and_health_pages(page, name, url_name, heading):
    sign_in(page)

    response = page.goto(reverse(url_name))

    assert response is not None
    assert response.status == 200
    assert heading.lower() in page.locator("h1").first.inner_text().lower()
    assert page.locator("#content").is_visible()
    snap(page, name)
