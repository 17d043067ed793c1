import json
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.utils import timezone

from cameras.choices import CameraStatus
from cameras.models import Camera
from cameras.schemas import CameraOut, CameraStatusOut
from its_camera.choices import ApiScope
from tests.cameras.factories import make_camera, make_zone
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

SECRET_CONFIG = {
    "stream_url": "rtsp://admin:hunter2@10.0.0.5:554/h264?channel=1&token=abc123",
    "resolution": "1080p",
    "fps": 25,
    "onvif": {"username": "admin", "password": "hunter2"},
    "api_key": "k-123",
}


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [camera["name"] for camera in response.json()["results"]]


# --- create / read / update / delete -------------------------------------------------------------


def test_register_a_camera_and_read_it_back(api_client):
    zone = make_zone(name="Midtown")

    response = api_client.post_json(
        "/api/v1/cameras",
        {
            "name": "5th & 42nd",
            "location": "5th Ave / 42nd St",
            "latitude": 40.7531,
            "longitude": -73.9822,
            "zone_id": str(zone.pk),
            "config": {"resolution": "1080p", "fps": 25},
            "tags": ["intersection", "ptz", "ptz"],
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    camera = Camera.objects.get(pk=body["id"])
    assert (camera.name, camera.zone_id, camera.status, camera.is_active) == ("5th & 42nd", zone.pk, "offline", True)
    assert camera.tags == ["intersection", "ptz"]
    assert body["zone_name"] == "Midtown"
    assert api_client.get(f"/api/v1/cameras/{camera.pk}").json()["config"] == {"resolution": "1080p", "fps": 25}


def test_partial_update_changes_only_the_fields_sent(api_client):
    camera = make_camera(name="Bridge", location="North ramp", tags=["bridge"], status=CameraStatus.ONLINE)

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"location": "South ramp", "tags": ["a", "b"]})

    assert response.status_code == 200, response.content
    camera.refresh_from_db()
    assert (camera.name, camera.location, camera.tags, camera.status) == ("Bridge", "South ramp", ["a", "b"], "online")


def test_delete_a_camera(api_client):
    camera = make_camera()

    assert api_client.delete(f"/api/v1/cameras/{camera.pk}").status_code == 204
    assert not Camera.objects.exists()
    assert api_client.get(f"/api/v1/cameras/{camera.pk}").status_code == 404


# --- credentials ---------------------------------------------------------------------------------


def test_stream_credentials_are_never_returned(api_client):
    created = api_client.post_json("/api/v1/cameras", {"name": "Secret cam", "config": SECRET_CONFIG})
    camera_id = created.json()["id"]

    bodies = [
        created.content,
        api_client.get(f"/api/v1/cameras/{camera_id}").content,
        api_client.get("/api/v1/cameras").content,
        api_client.patch_json(f"/api/v1/cameras/{camera_id}", {"location": "x"}).content,
    ]

    for body in bodies:
        assert b"hunter2" not in body
        assert b"abc123" not in body
        assert b"k-123" not in body
    shown = api_client.get(f"/api/v1/cameras/{camera_id}").json()["config"]
    assert shown["stream_url"] == "rtsp://********@10.0.0.5:554/h264?channel=1&token=********"
    assert shown["onvif"] == {"username": "********", "password": "********"}
    assert shown["api_key"] == "********"
    assert shown["resolution"] == "1080p"
    # The stored config still has the real secrets.
    assert Camera.objects.get(pk=camera_id).config == SECRET_CONFIG


def test_sending_a_masked_config_back_keeps_the_stored_secrets(api_client):
    camera = make_camera(config=SECRET_CONFIG)
    shown = api_client.get(f"/api/v1/cameras/{camera.pk}").json()["config"]

    shown["resolution"] = "4k"
    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"config": shown})

    assert response.status_code == 200, response.content
    camera.refresh_from_db()
    assert camera.config == {**SECRET_CONFIG, "resolution": "4k"}


def test_filtering_on_credentials_is_refused(api_client):
    make_camera(config={"password": "hunter2"})

    response = api_client.get("/api/v1/cameras?config=" + quote(json.dumps({"password": "hunter2"})))

    assert response.status_code == 422
    assert "credentials" in str(response.json()["detail"])


# --- bad input: clear 4xx, nothing written -------------------------------------------------------


def test_duplicate_name_is_409_and_nothing_is_written(api_client):
    make_camera(name="Main St")

    response = api_client.post_json("/api/v1/cameras", {"name": "Main St"})

    assert response.status_code == 409
    assert response.json()["detail"] == "A camera named 'Main St' already exists."
    assert Camera.objects.count() == 1


def test_rename_onto_a_taken_name_is_409_and_the_camera_is_unchanged(api_client):
    make_camera(name="A")
    camera = make_camera(name="B", location="here")

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"name": "A", "location": "there"})

    assert response.status_code == 409
    camera.refresh_from_db()
    assert (camera.name, camera.location) == ("B", "here")


def test_unknown_zone_is_422_and_nothing_is_written(api_client):
    response = api_client.post_json(
        "/api/v1/cameras", {"name": "Lost", "zone_id": "00000000-0000-0000-0000-000000000001"}
    )

    assert response.status_code == 422
    assert "Unknown zone" in str(response.json()["detail"])
    assert Camera.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "X", "latitude": 91, "longitude": 0},
        {"name": "X", "latitude": 0, "longitude": -181},
        {"name": "X", "latitude": 10},
        {"name": ""},
        {"name": "X", "status": "exploded"},
        {"name": "X", "tags": [""]},
        {"name": "X", "config": ["not", "an", "object"]},
        {"name": "X" * 201},
    ],
)
def test_invalid_camera_is_422_and_nothing_is_written(api_client, payload):
    response = api_client.post_json("/api/v1/cameras", payload)

    assert response.status_code == 422, response.content
    assert response.json()["detail"]
    assert Camera.objects.count() == 0


def test_patch_with_half_a_position_is_422_and_nothing_changes(api_client):
    camera = make_camera(location="kept")

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"latitude": 40.0, "location": "changed"})

    assert response.status_code == 422
    assert "latitude" in str(response.json()["detail"])
    camera.refresh_from_db()
    assert (camera.latitude, camera.location) == (None, "kept")


def test_malformed_json_is_400_and_nothing_is_written(api_client):
    response = api_client.post("/api/v1/cameras", data='{"name": "Broken",', content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert Camera.objects.count() == 0


def test_nan_coordinates_are_rejected(api_client):
    response = api_client.post(
        "/api/v1/cameras", data='{"name": "N", "latitude": NaN, "longitude": 1}', content_type="application/json"
    )

    assert response.status_code in (400, 422)
    assert Camera.objects.count() == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=10,50,0,60", "bbox"),
        ("bbox=-200,0,0,10", "bbox"),
        ("near=91,0", "near"),
        ("near=abc", "near"),
        ("config=" + quote("{not json"), "config"),
        ("config=" + quote("[1,2]"), "config"),
        ("status=exploded", "status"),
        ("zone=not-a-uuid", "zone"),
    ],
)
def test_bad_list_filters_are_422(api_client, query, field):
    response = api_client.get(f"/api/v1/cameras?{query}")

    assert response.status_code == 422, response.content
    assert field in str(response.json()["detail"])


# --- scopes ---------------------------------------------------------------------------------------


def test_scopes_guard_reads_and_writes(make_api_key, anonymous_api_client):
    camera = make_camera()
    reader = ApiClient(make_api_key(ApiScope.CAMERAS_READ).raw_key)
    telemetry_only = ApiClient(make_api_key(ApiScope.TELEMETRY_WRITE).raw_key)

    assert anonymous_api_client.get("/api/v1/cameras").status_code == 401
    assert telemetry_only.get("/api/v1/cameras").status_code == 403
    assert reader.get("/api/v1/cameras").status_code == 200
    assert reader.post_json("/api/v1/cameras", {"name": "new"}).status_code == 403
    assert reader.patch_json(f"/api/v1/cameras/{camera.pk}", {"name": "renamed"}).status_code == 403
    assert reader.post_json(f"/api/v1/cameras/{camera.pk}/heartbeat", {}).status_code == 403
    assert reader.delete(f"/api/v1/cameras/{camera.pk}").status_code == 403
    camera.refresh_from_db()
    assert camera.last_seen_at is None
    assert Camera.objects.count() == 1


# --- list filters ---------------------------------------------------------------------------------


def test_filter_by_status_zone_and_active(api_client):
    north, south = make_zone(name="North"), make_zone(name="South")
    make_camera(name="n-online", zone=north, status=CameraStatus.ONLINE)
    make_camera(name="n-error", zone=north, status=CameraStatus.ERROR)
    make_camera(name="n-inactive", zone=north, status=CameraStatus.ONLINE, is_active=False)
    make_camera(name="s-online", zone=south, status=CameraStatus.ONLINE)

    assert names(api_client.get("/api/v1/cameras?status=online")) == ["n-inactive", "n-online", "s-online"]
    assert names(api_client.get("/api/v1/cameras?status=online&status=error")) == [
        "n-error",
        "n-inactive",
        "n-online",
        "s-online",
    ]
    assert names(api_client.get(f"/api/v1/cameras?zone={north.pk}&is_active=true")) == ["n-error", "n-online"]
    assert names(api_client.get("/api/v1/cameras?is_active=false")) == ["n-inactive"]


def test_filter_by_tags_requires_every_tag(api_client):
    make_camera(name="both", tags=["ptz", "night"])
    make_camera(name="ptz-only", tags=["ptz"])
    make_camera(name="none")

    assert names(api_client.get("/api/v1/cameras?tag=ptz")) == ["both", "ptz-only"]
    assert names(api_client.get("/api/v1/cameras?tag=ptz&tag=night")) == ["both"]
    assert names(api_client.get("/api/v1/cameras?tag=ptz&tag=missing")) == []


def test_filter_by_config_containment(api_client):
    make_camera(name="hd", config={"resolution": "1080p", "model": {"name": "yolo", "threshold": 0.5}})
    make_camera(name="sd", config={"resolution": "480p", "model": {"name": "yolo", "threshold": 0.7}})

    def by_config(value: dict) -> list[str]:
        return names(api_client.get("/api/v1/cameras?config=" + quote(json.dumps(value))))

    assert by_config({"resolution": "1080p"}) == ["hd"]
    assert by_config({"model": {"name": "yolo"}}) == ["hd", "sd"]
    assert by_config({"model": {"threshold": 0.7}}) == ["sd"]


def test_filter_by_bounding_box(api_client):
    make_camera(name="times-square", latitude=40.758, longitude=-73.9855)
    make_camera(name="brooklyn", latitude=40.678, longitude=-73.944)
    make_camera(name="paris", latitude=48.8566, longitude=2.3522)
    make_camera(name="no-position")

    assert names(api_client.get("/api/v1/cameras?bbox=-74.02,40.70,-73.93,40.80")) == ["times-square"]
    assert names(api_client.get("/api/v1/cameras?bbox=-74.1,40.6,-73.9,40.8")) == ["brooklyn", "times-square"]


def test_near_orders_by_distance_and_paginates_by_distance(api_client):
    make_camera(name="far", latitude=41.0, longitude=-74.0)
    make_camera(name="closest", latitude=40.7581, longitude=-73.9856)
    make_camera(name="middle", latitude=40.70, longitude=-73.99)
    make_camera(name="near", latitude=40.75, longitude=-73.98)
    make_camera(name="no-position")

    first = api_client.get("/api/v1/cameras?near=40.758,-73.9855&page_size=2")
    second = api_client.get(first.json()["next"])

    assert names(first) == ["closest", "near"]
    assert names(second) == ["middle", "far"]
    assert second.json()["next"] is None
    distances = [camera["distance_km"] for camera in first.json()["results"] + second.json()["results"]]
    assert distances == sorted(distances)
    assert distances[0] < 0.05
    assert 26 < distances[-1] < 28  # 40.758,-73.9855 → 41.0,-74.0 is about 26.9 km


def test_name_search_is_case_insensitive_and_combines_with_filters(api_client):
    make_camera(name="Broadway & 42nd", status=CameraStatus.ONLINE)
    make_camera(name="BROADWAY & 34th", status=CameraStatus.OFFLINE)
    make_camera(name="Main St")

    assert names(api_client.get("/api/v1/cameras?search=broadway")) == ["BROADWAY & 34th", "Broadway & 42nd"]
    assert names(api_client.get("/api/v1/cameras?search=broadway&status=online")) == ["Broadway & 42nd"]


def test_list_is_cursor_paginated_by_name(api_client):
    for number in range(7):
        make_camera(name=f"cam-{number}")

    seen: list[str] = []
    url = "/api/v1/cameras?page_size=3"
    while url:
        page = api_client.get(url).json()
        seen += [camera["name"] for camera in page["results"]]
        url = page["next"]

    assert seen == [f"cam-{number}" for number in range(7)]


# --- heartbeat and status ------------------------------------------------------------------------


def test_heartbeat_marks_the_camera_seen_with_status_and_fps(api_client):
    camera = make_camera(status=CameraStatus.OFFLINE)
    before = timezone.now()

    response = api_client.post_json(f"/api/v1/cameras/{camera.pk}/heartbeat", {"status": "online", "fps": 24.7})

    assert response.status_code == 200, response.content
    camera.refresh_from_db()
    assert camera.status == "online"
    assert camera.last_fps == 24.7
    assert camera.last_seen_at >= before
    assert response.json()["status"] == "online"


def test_heartbeat_without_a_body_means_online(api_client):
    camera = make_camera(status=CameraStatus.OFFLINE, last_fps=12.0)

    response = api_client.generic("POST", f"/api/v1/cameras/{camera.pk}/heartbeat")  # no body, no content type

    assert response.status_code == 200, response.content
    camera.refresh_from_db()
    assert (camera.status, camera.last_fps) == ("online", 12.0)
    assert camera.last_seen_at is not None


def test_heartbeat_for_an_unknown_camera_is_404(api_client):
    response = api_client.post_json("/api/v1/cameras/00000000-0000-0000-0000-000000000000/heartbeat", {})
    assert response.status_code == 404


def test_heartbeat_with_bad_fps_is_422_and_changes_nothing(api_client):
    camera = make_camera()

    response = api_client.post_json(f"/api/v1/cameras/{camera.pk}/heartbeat", {"fps": -1})

    assert response.status_code == 422
    camera.refresh_from_db()
    assert (camera.last_seen_at, camera.status) == (None, "offline")


def test_status_lists_active_cameras_with_connection_status(api_client):
    now = timezone.now()
    zone = make_zone(name="Uptown")
    make_camera(name="a-streaming", last_seen_at=now - timedelta(seconds=5), last_fps=30, zone=zone)
    make_camera(name="b-recent", last_seen_at=now - timedelta(minutes=3), zone=zone)
    make_camera(name="c-stale", last_seen_at=now - timedelta(hours=1))
    make_camera(name="d-inactive", last_seen_at=now, is_active=False)

    everything = api_client.get("/api/v1/cameras/status").json()["results"]
    stale = api_client.get("/api/v1/cameras/status?connection_status=stale").json()["results"]
    in_zone = api_client.get(f"/api/v1/cameras/status?zone={zone.pk}").json()["results"]

    assert [(row["name"], row["connection_status"]) for row in everything] == [
        ("a-streaming", "streaming"),
        ("b-recent", "recent"),
        ("c-stale", "stale"),
    ]
    assert everything[0]["fps_current"] == 30
    assert everything[0]["zone_name"] == "Uptown"
    assert [row["name"] for row in stale] == ["c-stale"]
    assert [row["name"] for row in in_zone] == ["a-streaming", "b-recent"]


def test_heartbeat_moves_a_camera_to_streaming(api_client):
    camera = make_camera(name="waking", last_seen_at=timezone.now() - timedelta(hours=2))

    api_client.post_json(f"/api/v1/cameras/{camera.pk}/heartbeat", {"fps": 15})

    row = api_client.get("/api/v1/cameras/status").json()["results"][0]
    assert (row["name"], row["connection_status"], row["fps_current"]) == ("waking", "streaming", 15)


def test_near_pages_through_cameras_at_the_same_spot_without_repeats_or_gaps(api_client):
    # Cameras on one pole share a position: equal distances, told apart by the cursor's offset.
    for number in range(5):
        make_camera(name=f"pole-{number}", latitude=40.0, longitude=-74.0)
    make_camera(name="elsewhere", latitude=40.5, longitude=-74.0)

    seen: list[str] = []
    url = "/api/v1/cameras?near=40.0,-74.0&page_size=2"
    while url:
        page = api_client.get(url).json()
        seen += [camera["name"] for camera in page["results"]]
        url = page["next"]

    assert sorted(seen[:5]) == [f"pole-{number}" for number in range(5)]
    assert seen[5:] == ["elsewhere"]


def test_a_forged_near_cursor_is_400(api_client):
    make_camera(latitude=40.0, longitude=-74.0)

    response = api_client.get("/api/v1/cameras?near=40.0,-74.0&cursor=bm90IGpzb24=")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor."}


def test_list_payloads_match_the_declared_schemas(api_client):
    # The list endpoints serialise straight to JSON; their rows must stay exactly the documented shape.
    zone = make_zone(name="Z")
    make_camera(name="a", zone=zone, latitude=1.0, longitude=2.0, config=SECRET_CONFIG, tags=["t"], last_fps=5.0)
    make_camera(name="b", last_seen_at=timezone.now())

    cameras = (
        api_client.get("/api/v1/cameras").json()["results"]
        + api_client.get("/api/v1/cameras?near=1,2").json()["results"]
    )
    statuses = api_client.get("/api/v1/cameras/status").json()["results"]

    for row in cameras:
        assert set(row) == set(CameraOut.model_fields)
        CameraOut.model_validate(SimpleNamespace(**row))  # as an object: the schema's resolvers read attributes
    for row in statuses:
        assert set(row) == set(CameraStatusOut.model_fields)
        CameraStatusOut.model_validate(SimpleNamespace(**row))
    assert cameras[0]["zone_name"] == "Z"
    assert cameras[0]["config"]["onvif"]["password"] == "********"
    assert cameras[-1]["distance_km"] == 0.0


def test_moving_a_camera_to_another_zone_and_to_an_unknown_one(api_client):
    old, new = make_zone(name="Old"), make_zone(name="New")
    camera = make_camera(zone=old, location="kept")

    moved = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"zone_id": str(new.pk)})
    refused = api_client.patch_json(
        f"/api/v1/cameras/{camera.pk}", {"zone_id": "00000000-0000-0000-0000-000000000009", "location": "x"}
    )

    assert moved.status_code == 200
    assert moved.json()["zone_name"] == "New"
    assert refused.status_code == 422
    camera.refresh_from_db()
    assert (camera.zone_id, camera.location) == (new.pk, "kept")


@pytest.mark.parametrize("field", ["name", "config", "is_active", "status"])
def test_patching_a_required_field_to_null_is_422_and_changes_nothing(api_client, field):
    camera = make_camera(name="Keep", config={"fps": 25}, location="kept")

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {field: None, "location": "changed"})

    assert response.status_code == 422, response.content
    camera.refresh_from_db()
    assert (camera.name, camera.config, camera.is_active, camera.status, camera.location) == (
        "Keep",
        {"fps": 25},
        True,
        "offline",
        "kept",
    )
