"""Notifications through the API and the admin: bad input is refused with a clear reason and nothing is
written (row counts before/after); the admin's "send a test message" reaches the real receiver; the delivery
log lists in a fixed number of queries."""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cameras.choices import AlertKind
from cameras.services.alerts import alert_raise
from its_camera.choices import ApiScope
from notifications.models import AlertRule, NotificationChannel, NotificationDelivery
from tests.cameras.factories import make_camera, make_zone

from .conftest import NOW, make_rule

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notifications/channels"
RULES = "/api/v1/notifications/rules"


@pytest.fixture
def alerts_client(api_client_factory):
    return api_client_factory(ApiScope.ALERTS_WRITE)


@pytest.fixture
def api_client_factory(make_api_key):
    from tests.conftest import ApiClient

    return lambda *scopes: ApiClient(make_api_key(*scopes).raw_key)


def counts() -> tuple[int, int, int, int]:
    return (
        NotificationChannel.objects.count(),
        AlertRule.objects.count(),
        AlertRule.zones.through.objects.count(),
        AlertRule.channels.through.objects.count(),
    )


def test_a_webhook_is_tested_on_creation_and_its_secret_shown_once(alerts_client, receiver):
    # When an integration creates a webhook channel
    response = alerts_client.post_json(CHANNELS, {"name": "ops", "kind": "webhook", "url": receiver.url})

    # Then it was checked with a test message, saved, and the generated secret is in this answer only
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["secret"]) >= 32
    assert json.loads(receiver.requests[0].body)["event"] == "test"
    assert NotificationChannel.objects.get(pk=body["id"]).secret == body["secret"]
    listed = alerts_client.get(CHANNELS).json()["results"]
    assert "secret" not in listed[0]


def test_an_unreachable_webhook_is_refused_with_the_reason_and_nothing_is_written(alerts_client, unreachable_url):
    before = counts()
    response = alerts_client.post_json(CHANNELS, {"name": "ops", "kind": "webhook", "url": unreachable_url})
    assert response.status_code == 422
    assert "unreachable" in json.dumps(response.json()["detail"])
    assert "Connection refused" in json.dumps(response.json()["detail"])
    assert counts() == before
    assert NotificationDelivery.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "kind": "webhook", "url": "ftp://example.test/hook", "verify": False},
        {"name": "x", "kind": "email", "email_to": [], "verify": False},
        {"name": "x", "kind": "email", "email_to": ["not-an-address"], "verify": False},
        {"name": "x", "kind": "email", "email_to": [f"a{n}@example.test" for n in range(21)], "verify": False},
        {"name": "x" * 101, "kind": "email", "email_to": ["a@example.test"], "verify": False},
        {"name": "x", "kind": "pager", "verify": False},
        {"name": "x", "kind": "webhook", "url": "http://example.test", "timeout_seconds": 600, "verify": False},
    ],
)
def test_bad_channels_are_422_and_nothing_is_written(alerts_client, payload):
    before = counts()
    response = alerts_client.post_json(CHANNELS, payload)
    assert response.status_code == 422, response.content
    assert "detail" in response.json()
    assert counts() == before


def test_a_rule_with_an_unknown_zone_is_refused_and_nothing_is_written(alerts_client, webhook):
    # Given a known zone and one that does not exist
    known = make_zone(name="North")
    unknown = uuid.uuid4()
    before = counts()

    # When a rule names both
    response = alerts_client.post_json(
        RULES, {"name": "north", "zones": [str(known.pk), str(unknown)], "channels": [webhook.pk]}
    )

    # Then it is refused, naming the zone, and neither the rule nor any of its links was written
    assert response.status_code == 422
    assert str(unknown) in json.dumps(response.json()["detail"])
    assert counts() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "r", "channels": [999_999]},
        {"name": "r", "channels": []},
        {"name": "r", "channels": [1], "kinds": ["no_such_kind"]},
        {"name": "r", "channels": [1], "remind_after_minutes": 0},
        {"name": "r", "channels": [1], "camera_tags": ["t"] * 21},
        {"name": "r", "channels": [1], "zones": ["not-a-uuid"]},
    ],
)
def test_bad_rules_are_422_and_nothing_is_written(alerts_client, webhook, payload):
    payload = {**payload, "channels": [webhook.pk if c == 1 else c for c in payload["channels"]]}
    before = counts()
    response = alerts_client.post_json(RULES, payload)
    assert response.status_code == 422, response.content
    assert counts() == before


def test_a_rule_is_created_listed_and_deleted(alerts_client, webhook):
    zone = make_zone(name="Harbour")
    response = alerts_client.post_json(
        RULES,
        {
            "name": "harbour offline",
            "kinds": ["camera_offline"],
            "min_severity": "critical",
            "zones": [str(zone.pk)],
            "camera_tags": ["junction"],
            "channels": [webhook.pk],
            "remind_after_minutes": 30,
        },
    )
    assert response.status_code == 201, response.content
    rule = AlertRule.objects.get(pk=response.json()["id"])
    assert (rule.kinds, rule.min_severity, rule.camera_tags) == (["camera_offline"], "critical", ["junction"])
    assert list(rule.zones.all()) == [zone]
    assert alerts_client.get(RULES).json()["results"][0]["zones"] == [str(zone.pk)]
    assert alerts_client.delete(f"{RULES}/{rule.pk}").status_code == 204
    assert not AlertRule.objects.exists()


def test_notifications_need_the_alerts_write_scope(api_client_factory):
    reader = api_client_factory(ApiScope.CAMERAS_READ)
    assert reader.get(CHANNELS).status_code == 403
    assert reader.post_json(RULES, {"name": "r", "channels": [1]}).status_code == 403


def test_the_delivery_log_and_the_api_test_message(alerts_client, webhook, receiver):
    make_rule(webhook)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="j", message="failed", now=NOW)
    response = alerts_client.post(f"{CHANNELS}/{webhook.pk}/test")
    assert response.status_code == 200
    assert response.json()["state"] == "sent"
    log = alerts_client.get("/api/v1/notifications/deliveries?event=opened").json()["results"]
    assert [(row["event"], row["state"]) for row in log] == [("opened", "pending")]


# --- Admin -----------------------------------------------------------------------------------------------


def test_the_admin_send_test_action_reaches_the_receiver_and_reports_a_failure(
    admin_client, webhook, receiver, unreachable_url
):
    # Given a working webhook and a broken one
    broken = NotificationChannel.objects.create(name="broken", kind="webhook", url=unreachable_url)

    # When the operator runs "Send a test message" on both
    response = admin_client.post(
        reverse("admin:notifications_notificationchannel_changelist"),
        {"action": "send_test", "_selected_action": [webhook.pk, broken.pk]},
        follow=True,
    )

    # Then the working one reached the receiver, the broken one's error is on the page, both are logged
    assert response.status_code == 200
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["event"] == "test"
    text = response.content.decode()
    assert "Test message sent through “ops webhook”" in text
    assert "unreachable" in text
    assert dict(NotificationDelivery.objects.values_list("channel__name", "state")) == {
        "ops webhook": "sent",
        "broken": "failed",
    }


def test_the_admin_refuses_an_unreachable_webhook_with_a_form_error(admin_client, unreachable_url):
    before = counts()
    response = admin_client.post(
        reverse("admin:notifications_notificationchannel_add"),
        {
            "name": "ops", "kind": "webhook", "enabled": "on", "url": unreachable_url, "secret": "x" * 20,
            "email_to": "", "timeout_seconds": "2", "max_attempts": "3", "verify": "on",
            "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    assert response.status_code == 200  # the form again, with the error
    assert "unreachable" in response.content.decode()
    assert counts() == before


def test_the_admin_rule_form_saves_zones_and_channels(admin_client, webhook):
    zone = make_zone(name="Harbour")
    response = admin_client.post(
        reverse("admin:notifications_alertrule_add"),
        {
            "name": "harbour", "enabled": "on", "kinds": ["camera_offline"], "min_severity": "warning",
            "zones": [str(zone.pk)], "camera_tags": "", "channels": [webhook.pk], "remind_after_minutes": "15",
            "notify_resolved": "on", "max_messages_per_hour": "10",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get(name="harbour")
    assert rule.kinds == ["camera_offline"]
    assert list(rule.zones.all()) == [zone]


def test_the_delivery_log_lists_in_the_same_queries_whatever_its_size(admin_client, webhook):
    make_rule(webhook, max_messages_per_hour=0)
    url = reverse("admin:notifications_notificationdelivery_changelist")
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    with CaptureQueriesContext(connection) as small:
        assert admin_client.get(url).status_code == 200
    for _ in range(15):
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    with CaptureQueriesContext(connection) as large:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert len(large) == len(small)
    assert response.content.decode().count('name="_selected_action"') == 16
