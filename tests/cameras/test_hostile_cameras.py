"""Hostile input to the camera registry and to every list: deep JSON, nulls, guessed secrets, re-bound
credentials, malformed cursors and time ranges. Each answer is a 4xx with JSON `detail`, and nothing is
written (row counts and stored values compared before/after)."""

import base64
import json

import pytest
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cameras.credentials import MASK
from cameras.models import Camera
from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db

SECRET_CONFIG = {"stream_url": "rtsp://admin:hunter2@10.0.0.5/live", "pin": 4711, "resolution": "1080p"}


def store_config_bypassing_checks(camera: Camera, config_json: str) -> None:
    """What an older version (or a hand-made UPDATE) may have left in the table."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cameras SET config = %s::jsonb WHERE id = %s", [config_json, camera.pk])


# --- 2. JSON depth and size --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [9, 256, 5000])
def test_a_deep_config_is_refused_with_a_422_that_says_so_and_nothing_is_written(api_client, depth):
    payload = '{"name": "deep", "config": ' + '{"a":' * depth + "1" + "}" * depth + "}"

    response = api_client.post("/api/v1/cameras", data=payload, content_type="application/json")

    if depth < 1000:  # parsed, then refused by the config's depth limit
        assert response.status_code == 422, response.content
        assert "nested deeper than" in json.dumps(response.json())
    else:  # deeper than the JSON parser reads: "Cannot parse request body"
        assert response.status_code == 400, response.content
    assert not Camera.objects.exists()


def test_a_config_too_big_is_refused(api_client, settings):
    camera = make_camera(config={"fps": 25})
    big = {"notes": "x" * (settings.CAMERA_CONFIG_MAX_BYTES + 1)}

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"config": big})

    assert response.status_code == 422
    camera.refresh_from_db()
    assert camera.config == {"fps": 25}


def test_a_deep_config_already_stored_does_not_break_any_reader(api_client, admin_client):
    # Given a camera whose stored config is 256 levels deep (from before the limit)
    camera = make_camera(name="Deep")
    store_config_bypassing_checks(camera, '{"onvif":' * 255 + "{}" + "}" * 255)

    # Then every reader answers, showing the config masked below the depth limit
    for response in (
        api_client.get("/api/v1/cameras"),
        api_client.get(f"/api/v1/cameras/{camera.pk}"),
        admin_client.get(reverse("admin:cameras_camera_changelist")),
        admin_client.get(reverse("admin:cameras_camera_change", args=[camera.pk])),
    ):
        assert response.status_code == 200
    shown = api_client.get(f"/api/v1/cameras/{camera.pk}").json()["config"]
    assert MASK in json.dumps(shown)


@pytest.mark.parametrize("depth", [40, 3000])
def test_a_deep_config_filter_is_a_422(api_client, depth):
    text = '{"onvif":' * depth + "{}" + "}" * depth

    response = api_client.get("/api/v1/cameras", {"config": text})

    assert response.status_code == 422


# --- 3. Credentials -------------------------------------------------------------------------------------


def test_a_read_only_key_sees_no_credential_of_any_form(make_api_key):
    from tests.conftest import ApiClient

    camera = make_camera(
        config={**SECRET_CONFIG, "access_key": "AK-77", "notes": "backup: rtsp://root:toor@10.0.0.6/alt"}
    )
    reader = ApiClient(make_api_key("cameras:read").raw_key)

    bodies = [reader.get("/api/v1/cameras").content, reader.get(f"/api/v1/cameras/{camera.pk}").content]

    for body in bodies:
        for secret in (b"hunter2", b"4711", b"AK-77", b"toor", b"root"):
            assert secret not in body


@pytest.mark.parametrize("guess", [{"pin": 4711}, {"stream_url": "rtsp://admin:hunter2@10.0.0.5/live"}])
def test_the_config_filter_cannot_confirm_a_guessed_secret(api_client, guess):
    make_camera(config=SECRET_CONFIG)

    response = api_client.get("/api/v1/cameras", {"config": json.dumps(guess)})

    assert response.status_code == 422
    assert "shown config keys" in json.dumps(response.json())


def test_a_write_key_cannot_rebind_the_stored_password_to_its_own_host(api_client):
    camera = make_camera(config=SECRET_CONFIG)
    shown = api_client.get(f"/api/v1/cameras/{camera.pk}").json()["config"]

    shown["stream_url"] = shown["stream_url"].replace("10.0.0.5", "attacker.example")
    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"config": shown})

    assert response.status_code == 422
    assert "credentials" in json.dumps(response.json())
    camera.refresh_from_db()
    assert camera.config == SECRET_CONFIG


def test_a_masked_config_sent_back_with_other_changes_keeps_the_secrets(api_client):
    camera = make_camera(config=SECRET_CONFIG)
    shown = api_client.get(f"/api/v1/cameras/{camera.pk}").json()["config"]

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {"config": {**shown, "resolution": "4k"}})

    assert response.status_code == 200, response.content
    camera.refresh_from_db()
    assert camera.config == {**SECRET_CONFIG, "resolution": "4k"}


# --- 7. Malformed input: nulls, cursors, time ranges -----------------------------------------------------------


@pytest.mark.parametrize("field", ["tags", "location", "name", "config", "status", "is_active"])
def test_patching_a_field_that_cannot_be_empty_with_null_is_a_422_and_changes_nothing(api_client, field):
    camera = make_camera(tags=["a"], config={"fps": 25})
    before = Camera.objects.filter(pk=camera.pk).values().get()

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", {field: None})

    assert response.status_code == 422, response.content
    assert Camera.objects.filter(pk=camera.pk).values().get() == before


@pytest.mark.parametrize("field", ["name", "description"])
def test_patching_a_zone_field_with_null_is_a_422(api_client, field):
    zone = make_zone(description="d")

    response = api_client.patch_json(f"/api/v1/zones/{zone.pk}", {field: None})

    assert response.status_code == 422
    zone.refresh_from_db()
    assert zone.description == "d"


LISTS = [
    "/api/v1/cameras",
    "/api/v1/cameras?near=40.7,-73.9",
    "/api/v1/cameras/status",
    "/api/v1/zones",
    "/api/v1/alerts",
    "/api/v1/frames?camera_id=8c9ff1f0-71c3-4b88-972e-bd4d2caea360",
]
INVALID_CURSORS = [
    "bz0tMQ==",  # o=-1, the example
    base64.b64encode(b"o=99999999999999999999").decode(),
    base64.b64encode(b"r=maybe").decode(),
    "%%%",
    "x" * 2000,
]
ODD_CURSORS = [  # decodable, just pointing nowhere useful: any answer but a server error
    base64.b64encode(b"p=not-a-number&o=1").decode(),
    base64.b64encode(b"p=0001-01-01&r=true").decode(),
    "W1tbW1tbW1tbW1tbW1tbW1tbW1s=",
]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("cursor", INVALID_CURSORS + ODD_CURSORS)
def test_a_malformed_cursor_is_a_4xx_on_every_list(api_client, url, cursor):
    make_camera(latitude=40.7, longitude=-73.9)
    separator = "&" if "?" in url else "?"

    response = api_client.get(f"{url}{separator}cursor={cursor}")

    if cursor in INVALID_CURSORS:
        assert 400 <= response.status_code < 500, (url, cursor, response.content)
        assert "detail" in response.json()
    else:
        assert response.status_code in (200, 400), (url, cursor, response.content)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/frames?camera_id=8c9ff1f0-71c3-4b88-972e-bd4d2caea360&until=0001-01-01T00:00:00Z",
        "/api/v1/frames?camera_id=8c9ff1f0-71c3-4b88-972e-bd4d2caea360&since=9999-12-31T23:00:00-01:00",
        "/api/v1/analytics/hourly?until=0001-01-01T00:00:00Z",
        "/api/v1/analytics/daily?since=0001-01-01T00:00:00Z",
        "/api/v1/analytics/detections?until=9999-12-31T23:59:59Z",
    ],
)
def test_time_ranges_past_what_can_be_computed_are_a_422(api_client, url):
    response = api_client.get(url)

    assert response.status_code == 422, response.content


@hypothesis_settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(cursor=st.text(max_size=80) | st.binary(max_size=60).map(lambda raw: base64.b64encode(raw).decode()))
def test_property_no_cursor_makes_a_list_fail(api_client, cursor):
    for url in ("/api/v1/cameras", "/api/v1/zones", "/api/v1/alerts"):
        response = api_client.get(url, {"cursor": cursor})
        assert response.status_code in (200, 400, 422), (url, cursor, response.content)


@hypothesis_settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(["name", "status", "is_active", "location", "config", "tags", "latitude", "longitude"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.none(), max_size=2),
        max_size=4,
    )
)
def test_property_a_patch_of_any_shape_is_answered_without_a_server_error(api_client, body):
    camera = make_camera(config={"fps": 1}, latitude=1.0, longitude=2.0)
    before = Camera.objects.filter(pk=camera.pk).values().get()

    response = api_client.patch_json(f"/api/v1/cameras/{camera.pk}", body)

    assert response.status_code in (200, 409, 422), response.content
    if response.status_code != 200:
        assert Camera.objects.filter(pk=camera.pk).values().get() == before
    camera.delete()
