import pytest

from cameras.models import Camera, Zone
from its_camera.choices import ApiScope
from tests.cameras.factories import make_camera, make_zone
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_create_get_update_delete_a_zone(api_client):
    created = api_client.post_json(
        "/api/v1/zones",
        {"name": "Downtown", "description": "CBD", "min_latitude": 40.70, "max_latitude": 40.80},
    )
    assert created.status_code == 201, created.content
    zone_id = created.json()["id"]
    assert Zone.objects.get(pk=zone_id).description == "CBD"

    fetched = api_client.get(f"/api/v1/zones/{zone_id}").json()
    assert (fetched["name"], fetched["camera_count"]) == ("Downtown", 0)

    patched = api_client.patch_json(f"/api/v1/zones/{zone_id}", {"description": "Central business district"})
    assert patched.status_code == 200
    assert Zone.objects.get(pk=zone_id).description == "Central business district"
    assert Zone.objects.get(pk=zone_id).name == "Downtown"

    assert api_client.delete(f"/api/v1/zones/{zone_id}").status_code == 204
    assert not Zone.objects.exists()


def test_zone_list_is_cursor_paginated_with_camera_counts(api_client):
    zones = [make_zone(name=f"Zone {letter}") for letter in "ABCDE"]
    make_camera(zone=zones[0])
    make_camera(zone=zones[0])

    first = api_client.get("/api/v1/zones?page_size=3").json()
    second = api_client.get(first["next"]).json()

    assert [zone["name"] for zone in first["results"]] == ["Zone A", "Zone B", "Zone C"]
    assert [zone["name"] for zone in second["results"]] == ["Zone D", "Zone E"]
    assert second["next"] is None
    assert first["results"][0]["camera_count"] == 2


def test_duplicate_zone_name_is_409_and_nothing_is_written(api_client):
    make_zone(name="Harbour")

    response = api_client.post_json("/api/v1/zones", {"name": "Harbour"})

    assert response.status_code == 409
    assert "Harbour" in response.json()["detail"]
    assert Zone.objects.count() == 1


def test_inverted_bounds_are_422_and_nothing_is_written(api_client):
    response = api_client.post_json("/api/v1/zones", {"name": "Bad", "min_latitude": 41, "max_latitude": 40})

    assert response.status_code == 422
    assert "min_latitude" in str(response.json()["detail"])
    assert not Zone.objects.exists()


def test_rename_to_a_taken_name_is_409_and_the_zone_keeps_its_name(api_client):
    make_zone(name="North")
    south = make_zone(name="South")

    response = api_client.patch_json(f"/api/v1/zones/{south.pk}", {"name": "North"})

    assert response.status_code == 409
    south.refresh_from_db()
    assert south.name == "South"


def test_a_zone_with_cameras_cannot_be_deleted(api_client):
    zone = make_zone()
    camera = make_camera(zone=zone)

    response = api_client.delete(f"/api/v1/zones/{zone.pk}")

    assert response.status_code == 409
    assert "1 camera" in response.json()["detail"]
    assert Zone.objects.filter(pk=zone.pk).exists()
    assert Camera.objects.get(pk=camera.pk).zone_id == zone.pk


def test_unknown_zone_is_404(api_client):
    response = api_client.get("/api/v1/zones/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"detail": "Zone not found."}


def test_zone_writes_need_the_write_scope(make_api_key):
    reader = ApiClient(make_api_key(ApiScope.CAMERAS_READ).raw_key)

    assert reader.get("/api/v1/zones").status_code == 200
    assert reader.post_json("/api/v1/zones", {"name": "Nope"}).status_code == 403
    assert not Zone.objects.exists()
