"""The fleet status page in a real browser (Debian's Chromium driven by Playwright, no browser download):
it draws the chart from the vendored Chart.js and updates its counts live when a camera comes back."""

import httpx
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from cameras.status_events import camera_status_sweep
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create
from tests.browser.support import CHROMIUM, launch_chromium
from tests.cameras.factories import make_camera, make_zone

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)"),
    pytest.mark.django_db(transaction=True),
]


def test_the_fleet_page_counts_a_camera_coming_back_without_a_reload(extra_server, live_redis, django_user_model):
    # Given a zone with two stale cameras, the live picture recorded, and an operator signed in
    zone = make_zone(name="Harbour")
    camera = make_camera(zone=zone, last_seen_at=None)
    make_camera(zone=zone, last_seen_at=None)
    camera_status_sweep()
    server = extra_server(app="tests.live.asgi_with_static:application")
    operator = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    operator.user_permissions.set(Permission.objects.filter(codename__in=["view_camera", "view_alert"]))
    session = Client()
    session.force_login(operator)
    key = api_key_create(name="camera", scopes=[ApiScope.CAMERAS_WRITE]).raw_key  # ORM before Playwright's loop

    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=server.url)
        context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"].value, "url": server.url}])
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        # When the operator opens the fleet page and it is live
        page.goto(reverse("admin:cameras_camera_fleet_status"))
        page.wait_for_function("document.getElementById('fleet-live-state').textContent === 'live'")
        assert page.text_content("[data-fleet-total=streaming]").strip() == "0"
        assert page.text_content("[data-fleet-total=stale]").strip() == "2"
        assert page.evaluate("Chart.getChart('fleet-chart').data.labels") == ["Harbour"]

        # And a camera sends a heartbeat
        response = httpx.post(f"{server.url}/api/v1/cameras/{camera.pk}/heartbeat", json={}, headers={"X-API-Key": key})
        assert response.status_code == 200

        # Then the page counts it as streaming, in the tiles, the table and the chart, without a reload
        page.wait_for_function("document.querySelector('[data-fleet-total=streaming]').textContent.trim() === '1'")
        assert page.text_content("[data-fleet-total=stale]").strip() == "1"
        assert page.evaluate("Chart.getChart('fleet-chart').data.datasets.map(d => d.data[0])") == [1, 0, 1]
        assert "Camera" in page.text_content("#fleet-live-events")
        assert "stale/offline → streaming/online" in page.text_content("#fleet-live-events")
        assert errors == []
        browser.close()
