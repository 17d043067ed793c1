"""Camera, zone and alert admin: filters, search, bulk actions, masking, fleet page, query counts."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cameras.choices import AlertKind, AlertState, CameraStatus
from cameras.credentials import MASK
from cameras.models import Alert, Camera
from cameras.services.alerts import alert_raise
from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:cameras_camera_changelist"


def listed_names(response) -> list[str]:
    assert response.status_code == 200
    return sorted(camera.name for camera in response.context["cl"].result_list)


def post_action(admin_client, action: str, cameras, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(c.pk) for c in cameras], "index": 0, **extra}
    return admin_client.post(reverse(CHANGELIST), data)


# --- query counts -------------------------------------------------------------------------------------


def queries_for(admin_client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(captured)


def populate(count: int) -> None:
    now = timezone.now()
    zones = [make_zone() for _ in range(3)]
    for number in range(count):
        camera = make_camera(zone=zones[number % 3], tags=["a", "b"], last_seen_at=now - timedelta(seconds=number * 20))
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone")


@pytest.mark.parametrize(
    "url",
    [
        reverse(CHANGELIST),
        reverse(CHANGELIST) + "?connection=stale&status__exact=offline",
        reverse("admin:cameras_zone_changelist"),
        reverse("admin:cameras_alert_changelist"),
        reverse("admin:cameras_camera_fleet_status"),
    ],
)
def test_admin_pages_cost_the_same_queries_for_5_or_50_rows(admin_client, url):
    populate(5)
    admin_client.get(url)  # warm the session and content types
    with_5 = queries_for(admin_client, url)

    populate(45)
    with_50 = queries_for(admin_client, url)

    assert with_50 == with_5, f"{url}: {with_5} queries with 5 rows, {with_50} with 50"


def test_zone_change_page_with_its_cameras_inline_costs_the_same_for_5_or_50_cameras(admin_client):
    zone = make_zone()
    for _ in range(5):
        make_camera(zone=zone)
    url = reverse("admin:cameras_zone_change", args=[zone.pk])
    admin_client.get(url)
    with_5 = queries_for(admin_client, url)
    for _ in range(45):
        make_camera(zone=zone)

    assert queries_for(admin_client, url) == with_5


def test_camera_changelist_stays_within_a_fixed_budget(admin_client, django_assert_max_num_queries):
    populate(50)
    admin_client.get(reverse(CHANGELIST))
    with django_assert_max_num_queries(10):
        admin_client.get(reverse(CHANGELIST))


# --- filters and search -------------------------------------------------------------------------------


def test_changelist_filters_by_status_zone_active_and_connection(admin_client):
    now = timezone.now()
    north = make_zone(name="North")
    make_camera(name="streaming", last_seen_at=now, zone=north, status=CameraStatus.ONLINE)
    make_camera(name="recent", last_seen_at=now - timedelta(minutes=2), zone=north)
    make_camera(name="stale", last_seen_at=now - timedelta(hours=1), is_active=False)
    make_camera(name="never")
    url = reverse(CHANGELIST)

    assert listed_names(admin_client.get(url, {"connection": "streaming"})) == ["streaming"]
    assert listed_names(admin_client.get(url, {"connection": "recent"})) == ["recent"]
    assert listed_names(admin_client.get(url, {"connection": "stale"})) == ["never", "stale"]
    assert listed_names(admin_client.get(url, {"status__exact": "online"})) == ["streaming"]
    assert listed_names(admin_client.get(url, {"zone__id__exact": str(north.pk)})) == ["recent", "streaming"]
    assert listed_names(admin_client.get(url, {"is_active__exact": "0"})) == ["stale"]
    assert listed_names(admin_client.get(url, {"q": "rece"})) == ["recent"]


# --- bulk actions -------------------------------------------------------------------------------------


def test_activate_deactivate_and_maintenance_actions(admin_client):
    first, second, untouched = make_camera(), make_camera(), make_camera()

    post_action(admin_client, "deactivate", [first, second])
    assert list(Camera.objects.filter(is_active=False).order_by("name")) == [first, second]

    post_action(admin_client, "activate", [first])
    post_action(admin_client, "set_maintenance", [second])

    first.refresh_from_db()
    second.refresh_from_db()
    untouched.refresh_from_db()
    assert first.is_active
    assert (second.is_active, second.status) == (False, "maintenance")
    assert (untouched.is_active, untouched.status) == (True, "offline")


def test_move_to_zone_asks_for_the_zone_then_moves_only_the_selection(admin_client):
    old, new = make_zone(name="Old"), make_zone(name="New")
    chosen = [make_camera(zone=old), make_camera(zone=old)]
    left = make_camera(zone=old)

    form_page = post_action(admin_client, "move_to_zone", chosen)
    assert form_page.status_code == 200
    assert b'name="zone"' in form_page.content
    assert Camera.objects.filter(zone=new).count() == 0  # nothing moved before the zone is picked

    done = post_action(admin_client, "move_to_zone", chosen, apply="1", zone=str(new.pk))

    assert done.status_code == 302
    assert set(Camera.objects.filter(zone=new)) == set(chosen)
    left.refresh_from_db()
    assert left.zone == old


def test_move_to_zone_with_an_unknown_zone_shows_the_form_again_and_moves_nothing(admin_client):
    zone = make_zone()
    camera = make_camera(zone=zone)

    response = post_action(
        admin_client, "move_to_zone", [camera], apply="1", zone="00000000-0000-0000-0000-000000000000"
    )

    assert response.status_code == 200
    assert response.context["form"].errors["zone"]
    camera.refresh_from_db()
    assert camera.zone == zone


def test_add_tag_action_adds_once_and_keeps_existing_tags(admin_client):
    tagged = make_camera(tags=["night"])
    plain = make_camera(tags=[])
    already = make_camera(tags=["ptz"])

    post_action(admin_client, "add_tag", [tagged, plain, already])  # the form first
    post_action(admin_client, "add_tag", [tagged, plain, already], apply="1", tag=" ptz ")

    assert Camera.objects.get(pk=tagged.pk).tags == ["night", "ptz"]
    assert Camera.objects.get(pk=plain.pk).tags == ["ptz"]
    assert Camera.objects.get(pk=already.pk).tags == ["ptz"]


def test_add_tag_refuses_an_empty_tag(admin_client):
    camera = make_camera(tags=["a"])

    response = post_action(admin_client, "add_tag", [camera], apply="1", tag="   ")

    assert response.status_code == 200
    assert response.context["form"].errors["tag"]
    assert Camera.objects.get(pk=camera.pk).tags == ["a"]


# --- change form: masking and validation ---------------------------------------------------------------


SECRET_CONFIG = {"stream_url": "rtsp://admin:hunter2@10.0.0.5/live", "password": "hunter2", "fps": 25}


def change_form_data(camera: Camera, **overrides) -> dict:
    data = {
        "name": camera.name,
        "status": camera.status,
        "is_active": "on" if camera.is_active else "",
        "location": camera.location,
        "latitude": "" if camera.latitude is None else camera.latitude,
        "longitude": "" if camera.longitude is None else camera.longitude,
        "zone": camera.zone_id or "",
        "tags": ",".join(camera.tags),
    }
    data.update(overrides)
    return {
        key: value
        for key, value in data.items()
        if value != "" or key in ("location", "zone", "latitude", "longitude", "tags")
    }


def test_change_form_masks_credentials_and_a_save_keeps_them(admin_client):
    camera = make_camera(config=SECRET_CONFIG)
    url = reverse("admin:cameras_camera_change", args=[camera.pk])

    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"hunter2" not in page.content
    shown = page.context["adminform"].form.initial["config"]
    assert shown["password"] == MASK

    shown["fps"] = 30
    response = admin_client.post(url, change_form_data(camera, config=json.dumps(shown), location="moved"))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    camera.refresh_from_db()
    assert camera.config == {**SECRET_CONFIG, "fps": 30}
    assert camera.location == "moved"


def test_change_form_refuses_a_duplicate_name_and_half_a_position(admin_client):
    make_camera(name="Taken")
    camera = make_camera(name="Mine")
    url = reverse("admin:cameras_camera_change", args=[camera.pk])

    duplicate = admin_client.post(url, change_form_data(camera, name="Taken", config="{}"))
    half = admin_client.post(url, change_form_data(camera, latitude="40.0", config="{}"))

    assert duplicate.status_code == 200
    assert "already exists" in str(duplicate.context["adminform"].form.errors)
    assert half.status_code == 200
    assert "Latitude and longitude go together" in str(half.context["adminform"].form.errors)
    camera.refresh_from_db()
    assert (camera.name, camera.latitude) == ("Mine", None)


def test_changelist_never_shows_credentials(admin_client):
    make_camera(config=SECRET_CONFIG)

    assert b"hunter2" not in admin_client.get(reverse(CHANGELIST)).content


# --- zones --------------------------------------------------------------------------------------------


def test_zone_changelist_shows_camera_counts_and_the_change_page_its_cameras(admin_client):
    zone = make_zone(name="Harbour")
    make_camera(name="pier-1", zone=zone)
    make_camera(name="pier-2", zone=zone, is_active=False)

    changelist = admin_client.get(reverse("admin:cameras_zone_changelist"))
    change = admin_client.get(reverse("admin:cameras_zone_change", args=[zone.pk]))

    row = changelist.context["cl"].result_list[0]
    assert (row.camera_total, row.camera_active) == (2, 1)
    assert b"pier-1" in change.content
    assert b"pier-2" in change.content


# --- alerts -------------------------------------------------------------------------------------------


def test_alert_admin_acknowledges_and_resolves_as_the_operator(admin_client):
    first = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="a")
    second = alert_raise(kind=AlertKind.JOB_FAILED, subject="x", message="b")
    url = reverse("admin:cameras_alert_changelist")

    admin_client.post(url, {"action": "acknowledge", helpers.ACTION_CHECKBOX_NAME: [first.pk], "index": 0})
    admin_client.post(url, {"action": "resolve", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk], "index": 0})

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.acknowledged_by, first.resolved_by) == (AlertState.RESOLVED, "admin", "admin")
    assert (second.state, second.acknowledged_by) == (AlertState.RESOLVED, "")


def test_alerts_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:cameras_alert_add")).status_code == 403
    alert = alert_raise(kind=AlertKind.ROLLUP_LAG, message="lag")
    assert admin_client.get(reverse("admin:cameras_alert_change", args=[alert.pk])).status_code == 200
    assert Alert.objects.count() == 1


# --- fleet status ------------------------------------------------------------------------------------


def test_fleet_status_counts_per_zone(admin_client):
    now = timezone.now()
    north, south = make_zone(name="North"), make_zone(name="South")
    make_camera(zone=north, last_seen_at=now)
    make_camera(zone=north, last_seen_at=now - timedelta(minutes=1))
    stale = make_camera(zone=south, last_seen_at=now - timedelta(hours=1))
    make_camera(zone=south, last_seen_at=now, is_active=False)  # inactive: not counted
    make_camera(last_seen_at=None)
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=stale, message="gone")

    response = admin_client.get(reverse("admin:cameras_camera_fleet_status"))

    assert response.status_code == 200
    rows = {row.zone_name: (row.streaming, row.recent, row.stale, row.open_alerts) for row in response.context["rows"]}
    assert rows == {"North": (1, 1, 0, 0), "South": (0, 0, 1, 1), "(no zone)": (0, 0, 1, 0)}
    assert response.context["totals"] == {"streaming": 1, "recent": 1, "stale": 2, "open_alerts": 1, "total": 4}
    assert re.search(rb"Fleet status", response.content)
    assert b"fleet-status" in admin_client.get(reverse(CHANGELIST)).content  # linked from the camera list


# --- zone deletion goes through the service, as the API's does ------------------------------------------


def test_deleting_a_zone_with_cameras_is_refused_in_the_admin_as_in_the_api(admin_client, api_client):
    # Given a zone with a camera, and an empty one
    busy, empty = make_zone(name="busy"), make_zone(name="empty")
    camera = make_camera(zone=busy)

    # When an operator confirms deleting the busy zone, singly and through the bulk action
    single = admin_client.post(reverse("admin:cameras_zone_delete", args=[busy.pk]), {"post": "yes"})
    bulk = admin_client.post(
        reverse("admin:cameras_zone_changelist"),
        {"action": "delete_selected", helpers.ACTION_CHECKBOX_NAME: [busy.pk, empty.pk], "post": "yes"},
    )

    # Then both pages say why (the service's message, the API's 409 detail) and nothing was deleted or cleared
    api = api_client.delete(f"/api/v1/zones/{busy.pk}")
    assert api.status_code == 409
    for response in (single, bulk):
        assert response.status_code == 200
        assert api.json()["detail"].replace("'", "&#x27;") in response.content.decode()
    camera.refresh_from_db()
    assert camera.zone_id == busy.pk
    assert sorted(Camera.objects.values_list("zone__name", flat=True)) == ["busy"]
    from cameras.models import Zone

    assert sorted(Zone.objects.values_list("name", flat=True)) == ["busy", "empty"]

    # When the empty zone alone is deleted, it goes
    response = admin_client.post(reverse("admin:cameras_zone_delete", args=[empty.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert list(Zone.objects.values_list("name", flat=True)) == ["busy"]


def test_change_form_refuses_to_move_a_masked_password_to_another_host(admin_client):
    camera = make_camera(config={"stream_url": "rtsp://admin:hunter2@10.0.0.5/live", "fps": 25})
    url = reverse("admin:cameras_camera_change", args=[camera.pk])
    shown = admin_client.get(url).context["adminform"].form.initial["config"]

    shown["stream_url"] = shown["stream_url"].replace("10.0.0.5", "attacker.example")
    response = admin_client.post(url, change_form_data(camera, config=json.dumps(shown)))

    assert response.status_code == 200
    assert "send the whole value with its credentials" in str(response.context["adminform"].form.errors)
    camera.refresh_from_db()
    assert camera.config == {"stream_url": "rtsp://admin:hunter2@10.0.0.5/live", "fps": 25}


def test_change_form_refuses_a_config_nested_too_deep(admin_client):
    camera = make_camera(config={"fps": 25})
    url = reverse("admin:cameras_camera_change", args=[camera.pk])

    response = admin_client.post(url, change_form_data(camera, config='{"a":' * 20 + "1" + "}" * 20))

    assert response.status_code == 200
    assert "nested deeper than" in str(response.context["adminform"].form.errors)
    camera.refresh_from_db()
    assert camera.config == {"fps": 25}
