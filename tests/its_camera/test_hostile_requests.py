"""Hostile requests to the platform as a whole: invented methods (metric labels), disallowed hosts, admin pages
opened by staff without permissions, and the live stream during a database outage."""

import re
import socket

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from its_camera.metrics import KNOWN_METHODS, render_metrics
from tests.its_camera.test_body_limits import call

# --- 6. Metrics cardinality -------------------------------------------------------------------------------


def method_labels() -> set[str]:
    return set(re.findall(r'its_http_requests_total\{method="([^"]*)"', render_metrics().decode()))


def test_invented_http_methods_add_no_metric_series(db):
    client = Client()
    for number in range(100):
        client.generic(f"INVENTED{number}", "/api/v1/whoami")

    labels = method_labels()

    assert labels <= KNOWN_METHODS | {"other"}
    assert "other" in labels


@hypothesis_settings(max_examples=50, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", min_size=1, max_size=30))
def test_property_every_method_label_comes_from_a_bounded_set(db, method):
    Client().generic(method, "/api/v1/nowhere/at/all")

    assert method_labels() <= KNOWN_METHODS | {"other"}
    routes = set(re.findall(r'its_http_requests_total\{[^}]*route="([^"]*)"', render_metrics().decode()))
    assert not any("nowhere" in route for route in routes)


# --- 9. Hosts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_a_disallowed_host_under_api_gets_a_json_400_never_a_page(db, settings, debug):
    settings.DEBUG = debug

    response = Client(HTTP_HOST="attacker.example").get("/api/v1/cameras")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"detail"}
    assert b"DATABASE" not in response.content


# --- 8. Admin permissions ------------------------------------------------------------------------------------


def admin_pages() -> list[str]:
    from archival.models import RetentionPolicy

    policy = RetentionPolicy.objects.first()
    assert policy is not None  # seeded by a migration
    return [
        reverse("operations-health"),
        reverse("operations-fleet-snapshot"),
        reverse("admin:cameras_camera_fleet_status"),
        reverse("admin:archival_partitionhealth_changelist"),
        reverse("admin:archival_retentionpolicy_preview", args=[policy.pk]),
        reverse("admin:telemetry_analytics_dashboard"),
    ]


def test_staff_without_permissions_opens_no_operations_page(db, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)

    for url in admin_pages():
        assert client.get(url).status_code == 403, url
    index = client.get(reverse("admin:index")).content.decode()
    assert "Database health" not in index
    assert "Fleet status" not in index


def test_superusers_open_every_operations_page(admin_client):
    for url in admin_pages():
        assert admin_client.get(url).status_code == 200, url


# --- 9. The live stream during a database outage -----------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_stream_answers_503_json_when_the_database_is_down(transactional_db, monkeypatch):
    # Given the database cannot be reached (the pool is rebuilt against a port nothing listens on)
    connection.close()
    connection.close_pool()
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port())
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "pool", {"min_size": 0, "max_size": 1, "timeout": 1})
    try:
        # When a client with a key opens the stream
        key = "itsk_0123456789ab_well-formed-but-unchecked"
        client = call("/api/v1/cameras/status/stream", {"x-api-key": key}, [b""], method="GET")
    finally:
        monkeypatch.undo()
        connection.close()
        connection.close_pool()

    # Then the answer is a JSON 503 with Retry-After, not a 500
    assert client.status == 503
    assert "Database unavailable" in client.detail
    start = next(m for m in client.messages if m["type"] == "http.response.start")
    headers = {name.lower(): value for name, value in start["headers"]}
    assert headers[b"retry-after"] == b"5"


@pytest.mark.parametrize("url", ["/api/v1/cameras/import", "/api/v1/zones/import"])
def test_a_multipart_body_without_a_boundary_is_a_400_not_a_500(api_client, url):
    response = api_client.generic("POST", url, b"--x\r\n", content_type="multipart/form-data")

    assert response.status_code == 400
    assert "Malformed form body" in response.json()["detail"]


def test_the_admin_home_shows_only_the_panels_whose_data_the_user_may_view(db, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("panels", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    panels = ("fleet", "alerts", "ingest", "storage", "jobs")

    home = client.get(reverse("admin:index")).content.decode()
    assert not any(f'id="panel-{key}"' in home for key in panels)

    staff.user_permissions.add(Permission.objects.get(content_type__app_label="cameras", codename="view_camera"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))  # a fresh permission cache
    home = client.get(reverse("admin:index")).content.decode()
    assert 'id="panel-fleet"' in home
    assert not any(f'id="panel-{key}"' in home for key in panels[1:])
