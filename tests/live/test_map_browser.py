"""The camera map in Chromium (vendored Leaflet, no tile server: the coordinate canvas): markers coloured by
status, zones drawn, a heartbeat turns a marker green without a reload (SSE), zooming to a zone filters the list,
a click opens the camera page. Screenshots 40-41."""

from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cameras.status_events import camera_status_sweep
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create
from tests.cameras.factories import make_camera, make_zone

from ..browser.support import CHROMIUM, launch_chromium, snap

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)"),
    pytest.mark.django_db(transaction=True),
]
GREEN, RED = "#2e7d32", "#c62828"


def test_the_map_colours_cameras_live_filters_the_list_and_opens_the_camera_page(
    extra_server, live_redis, django_user_model
):
    # Given two zones far apart, a streaming camera and a stale one in the harbour, one uptown
    harbour = make_zone(
        name="Harbour", min_latitude=59.90, min_longitude=10.70, max_latitude=59.92, max_longitude=10.74
    )
    make_zone(name="Uptown", min_latitude=59.96, min_longitude=10.78, max_latitude=59.98, max_longitude=10.82)
    now = timezone.now()
    quay = make_camera(name="Quay St", zone=harbour, latitude=59.91, longitude=10.72, last_seen_at=now)
    pier = make_camera(
        name="Pier 4", zone=harbour, latitude=59.905, longitude=10.71, last_seen_at=now - timedelta(hours=2)
    )
    make_camera(name="Uptown Sq", latitude=59.97, longitude=10.80, last_seen_at=now - timedelta(hours=2))
    camera_status_sweep()
    server = extra_server(app="tests.live.asgi_with_static:application")
    operator = django_user_model.objects.create_user("operator", password="x", is_staff=True, is_superuser=True)
    session = Client()
    session.force_login(operator)
    key = api_key_create(name="camera", scopes=[ApiScope.CAMERAS_WRITE]).raw_key
    assert settings.MAP_TILE_URL == ""

    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"].value, "url": server.url}])
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        # When the operator opens the map
        page.goto(reverse("operations-map"))
        page.wait_for_function("document.getElementById('map-live-state').textContent === 'live'")

        # Then every positioned camera is a marker coloured by its status, and both zones are drawn
        assert page.evaluate("Object.keys(window.cameraMap.markers()).length") == 3
        assert page.evaluate(f"window.cameraMap.colourOf('{quay.pk}')") == GREEN
        assert page.evaluate(f"window.cameraMap.colourOf('{pier.pk}')") == RED
        assert page.locator("#camera-map path.leaflet-interactive").count() == 3  # the markers (zones: not clickable)
        assert page.locator("#camera-map path").count() >= 5  # markers, zone boxes (and the graticule)
        assert "3 of 3" in page.text_content("#map-list-caption")
        snap(page, "40-camera-map")

        # When the stale pier camera sends a heartbeat
        response = httpx.post(f"{server.url}/api/v1/cameras/{pier.pk}/heartbeat", json={}, headers={"X-API-Key": key})
        assert response.status_code == 200

        # Then its marker turns green without a reload
        page.wait_for_function(f"window.cameraMap.colourOf('{pier.pk}') === '{GREEN}'")
        assert page.text_content(f"#map-camera-list tr[data-camera-id='{pier.pk}'] td:last-child") == "streaming"

        # When the operator zooms to the harbour
        page.evaluate("window.cameraMap.map.fitBounds([[59.90, 10.70], [59.92, 10.74]], {animate: false})")

        # Then the list holds the harbour's cameras only
        page.wait_for_function(
            "document.getElementById('map-list-caption').textContent.startsWith('Cameras in view: 2 of 3')"
        )
        listed = page.locator("#map-camera-list tbody tr td:first-child").all_inner_texts()
        assert listed == ["Pier 4", "Quay St"]
        snap(page, "41-camera-map-harbour")

        # When the operator clicks the Quay St marker
        point = page.evaluate(
            "(() => { const p = window.cameraMap.map.latLngToContainerPoint([59.91, 10.72]);"
            " const box = document.getElementById('camera-map').getBoundingClientRect();"
            " return [box.left + p.x, box.top + p.y]; })()"
        )
        page.mouse.click(point[0], point[1])

        # Then the camera page opens
        page.wait_for_url(f"**{reverse('operations-camera', args=[quay.pk])}")
        assert "Quay St" in page.locator("h1").first.inner_text()
        assert errors == []
        browser.close()
