"""The camera map's snapshot: active cameras with a position and their connection status, zones with a box;
staff only; a fixed number of queries whatever the fleet size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db


def test_the_snapshot_has_positioned_active_cameras_by_status_and_boxed_zones(admin_client):
    # Given cameras seen now and long ago, one without a position, one inactive, and two zones
    harbour = make_zone(name="Harbour", min_latitude=59.9, min_longitude=10.7, max_latitude=59.92, max_longitude=10.75)
    make_zone(name="No box")
    streaming = make_camera(name="A", zone=harbour, latitude=59.91, longitude=10.72, last_seen_at=timezone.now())
    stale = make_camera(name="B", latitude=59.95, longitude=10.8, last_seen_at=timezone.now() - timedelta(hours=1))
    make_camera(name="C", last_seen_at=timezone.now())  # no position
    make_camera(name="D", latitude=1, longitude=1, is_active=False)

    # When the map loads its snapshot
    response = admin_client.get(reverse("operations-map-snapshot"))

    # Then it has the two positioned active cameras with their status, and the zone with a box
    assert response.status_code == 200
    body = response.json()
    cameras = {camera["name"]: camera for camera in body["cameras"]}
    assert set(cameras) == {"A", "B"}
    assert cameras["A"] == {
        "id": str(streaming.pk), "name": "A", "status": "offline", "zone_id": str(harbour.pk), "location": "",
        "lat": 59.91, "lon": 10.72, "connection_status": "streaming",
    } | {"location": streaming.location}  # fmt: skip
    assert cameras["B"]["connection_status"] == "stale"
    assert cameras["B"]["id"] == str(stale.pk)
    assert body["zones"] == [
        {"id": str(harbour.pk), "name": "Harbour", "south": 59.9, "west": 10.7, "north": 59.92, "east": 10.75}
    ]
    assert body["truncated"] is False


def test_the_map_page_and_snapshot_are_for_staff_and_bounded(admin_client, client):
    assert client.get(reverse("operations-map")).status_code == 302
    assert client.get(reverse("operations-map-snapshot")).status_code == 302
    page = admin_client.get(reverse("operations-map"))
    assert page.status_code == 200
    assert "vendor/leaflet/leaflet.js" in page.content.decode()
    assert page.context["map_config"]["tileUrl"] == ""

    make_camera(latitude=1, longitude=1)
    with CaptureQueriesContext(connection) as small:
        admin_client.get(reverse("operations-map-snapshot"))
    for index in range(30):
        make_camera(latitude=index, longitude=index)
        make_zone(min_latitude=index, min_longitude=index, max_latitude=index + 1, max_longitude=index + 1)
    with CaptureQueriesContext(connection) as large:
        assert len(admin_client.get(reverse("operations-map-snapshot")).json()["cameras"]) == 31
    assert len(large) == len(small)


def test_the_tile_url_is_a_setting(admin_client, settings):
    settings.MAP_TILE_URL = "https://tiles.internal/{z}/{x}/{y}.png"
    page = admin_client.get(reverse("operations-map"))
    assert page.context["map_config"]["tileUrl"] == "https://tiles.internal/{z}/{x}/{y}.png"
