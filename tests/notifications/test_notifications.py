"""Alerts reach people: rules match alerts to channels; webhooks (signed JSON) and email (SMTP) are sent by a
worker after the alert's transaction commits, retried with backoff, throttled, logged; a failing channel
never blocks the code that raised the alert and raises its own alert. Real HTTP receiver, real SMTP server."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db import transaction

from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.models import Alert
from cameras.services.alerts import alert_acknowledge, alert_raise, alert_resolve
from its_camera.metrics import REGISTRY
from notifications.choices import DeliveryEvent, DeliveryState
from notifications.models import NotificationDelivery
from notifications.services import deliveries as delivery_services
from notifications.services.channels import channel_create
from notifications.services.deliveries import delivery_attempt, notifications_due_process
from notifications.tasks import deliver_notification
from tests.cameras.factories import make_camera, make_zone

from .conftest import NOW, make_rule

pytestmark = pytest.mark.django_db


def send_all(now=NOW):
    """What a worker does with the queued tasks: attempt every due delivery once."""
    for delivery_id in NotificationDelivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", flat=True):
        delivery_attempt(delivery_id=delivery_id, now=now)


def deliveries_counter(kind: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("its_notification_deliveries_total", {"channel_kind": kind, "outcome": outcome})
        or 0.0
    )


def test_an_opened_alert_is_posted_once_as_signed_json_after_commit(
    webhook, receiver, django_capture_on_commit_callbacks
):
    # Given a rule sending critical camera_offline alerts of zone North to the webhook
    north = make_zone(name="North")
    camera = make_camera(zone=north, tags=["junction"])
    make_rule(webhook, kinds=[AlertKind.CAMERA_OFFLINE], min_severity="critical", zone_ids=[north.pk])

    # When the camera's offline alert opens, inside a transaction
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        alert = alert_raise(
            kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="silent 10 min", severity="critical", now=NOW
        )
        # Then nothing has been sent while the alert's transaction is open
        assert receiver.requests == []
    delivery = NotificationDelivery.objects.get()
    assert (delivery.alert_id, delivery.event, delivery.state) == (alert.pk, DeliveryEvent.OPENED, "pending")
    # and sending is queued for after commit
    assert any(getattr(cb, "func", None) is delivery_services.deliveries_enqueue for cb in callbacks)

    # When the worker runs the task
    result = deliver_notification(delivery.pk)

    # Then the receiver got one POST: the alert as JSON, signed with the channel's secret
    assert result["state"] == "sent"
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    body = json.loads(request.body)
    assert body["event"] == "alert.opened"
    assert body["alert"]["id"] == alert.pk
    assert body["alert"]["camera"]["name"] == camera.name
    assert body["alert"]["severity"] == "critical"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-its-event"] == "alert.opened"
    timestamp, signature = (part.split("=", 1)[1] for part in request.headers["x-its-signature"].split(","))
    expected = hmac.new(webhook.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_status) == ("sent", 1, 200)
    # and a second run of the same task sends nothing more
    assert deliver_notification(delivery.pk) == {"delivery_id": delivery.pk, "claimed": False}
    assert len(receiver.requests) == 1


def test_re_raising_an_open_alert_sends_nothing_new_and_resolving_it_sends_one_resolution(webhook, receiver):
    # Given an opened alert already delivered
    camera = make_camera()
    make_rule(webhook)
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="down", now=NOW)
    send_all()

    # When it is raised again (updated), then resolved
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="still down", now=NOW + timedelta(minutes=1))
    alert_resolve(kind=AlertKind.CAMERA_OFFLINE, camera=camera, now=NOW + timedelta(minutes=2))
    send_all(NOW + timedelta(minutes=2))

    # Then the receiver got the opening and the resolution, nothing for the update
    events = [json.loads(request.body)["event"] for request in receiver.requests]
    assert events == ["alert.opened", "alert.resolved"]
    assert json.loads(receiver.requests[1].body)["alert"]["state"] == AlertState.RESOLVED


@pytest.mark.parametrize(
    ("rule_fields", "matches"),
    [
        ({"kinds": [AlertKind.JOB_FAILED]}, False),
        ({"min_severity": "critical"}, False),
        ({"camera_tags": ["junction", "school"]}, False),
        ({"camera_tags": ["junction"]}, True),
        ({"kinds": [AlertKind.CAMERA_OFFLINE], "min_severity": "warning"}, True),
    ],
)
def test_rules_match_on_kind_severity_and_camera_tags(webhook, rule_fields, matches):
    # Given a rule, and a warning about a camera tagged "junction"
    make_rule(webhook, **rule_fields)
    camera = make_camera(tags=["junction", "north"])

    # When the alert opens
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="down", severity="warning", now=NOW)

    # Then a delivery exists only if the rule matches
    assert NotificationDelivery.objects.exists() is matches


def test_a_zone_rule_ignores_other_zones_and_system_alerts(webhook):
    north, south = make_zone(name="N"), make_zone(name="S")
    make_rule(webhook, zone_ids=[north.pk])
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(zone=south), message="down", now=NOW)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="x", message="failed", now=NOW)
    assert NotificationDelivery.objects.count() == 0
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(zone=north), message="down", now=NOW)
    assert NotificationDelivery.objects.count() == 1


def test_a_reminder_goes_once_when_the_alert_is_still_open_after_the_configured_time(webhook, receiver):
    # Given a rule reminding after 30 minutes, and two alerts opened and delivered at 23:55 on the 30th
    make_rule(webhook, remind_after_minutes=30)
    still_open = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    acknowledged = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    send_all()
    alert_acknowledge(alert=acknowledged, acknowledged_by="operator", now=NOW + timedelta(minutes=5))

    # When the beat job runs before the 30 minutes are up
    assert notifications_due_process(now=NOW + timedelta(minutes=29)) == 0
    # and after them (00:26 on the 1st), twice
    notifications_due_process(now=NOW + timedelta(minutes=31))
    notifications_due_process(now=NOW + timedelta(minutes=32))
    send_all(NOW + timedelta(minutes=32))

    # Then one reminder went, for the alert nobody acknowledged
    reminders = NotificationDelivery.objects.filter(event=DeliveryEvent.REMINDER)
    assert list(reminders.values_list("alert_id", "state")) == [(still_open.pk, "sent")]
    assert [json.loads(r.body)["event"] for r in receiver.requests].count("alert.reminder") == 1


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(webhook, receiver):
    # Given a receiver that answers 500 twice, then 200
    receiver.statuses = [500, 503]
    make_rule(webhook)
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    delivery = NotificationDelivery.objects.get()

    # When the worker tries, fails, and tries again when each backoff is due
    first = delivery_attempt(delivery_id=delivery.pk, now=NOW)
    assert first is not None
    assert (first.state, first.retry_in) == ("retrying", 30.0)
    assert delivery_attempt(delivery_id=delivery.pk, now=NOW + timedelta(seconds=10)) is None  # not due yet
    second = delivery_attempt(delivery_id=delivery.pk, now=NOW + timedelta(seconds=30))
    assert second is not None
    assert (second.state, second.retry_in) == ("retrying", 120.0)
    third = delivery_attempt(delivery_id=delivery.pk, now=NOW + timedelta(seconds=150))

    # Then the third attempt was delivered, and the log shows three attempts and no error left
    assert third is not None
    assert third.state == "sent"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert len(receiver.requests) == 3
    assert not Alert.objects.filter(kind=AlertKind.NOTIFICATION_FAILED).exists()


def test_a_channel_that_keeps_failing_gives_up_logs_why_and_raises_its_own_alert(unreachable_url, receiver):
    # Given an unreachable webhook with 2 attempts, and a second, working channel on the same rule
    broken = channel_create(name="broken", kind="webhook", url=unreachable_url, max_attempts=2, verify=False)
    working = channel_create(name="working", kind="webhook", url=receiver.url, verify=False)
    rule = make_rule(broken)
    rule.channels.add(working)
    failed_before = deliveries_counter("webhook", "failed")
    alert = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)

    # When every attempt has been made
    for delivery in NotificationDelivery.objects.filter(channel=broken):
        delivery_attempt(delivery_id=delivery.pk, now=NOW)
        delivery_attempt(delivery_id=delivery.pk, now=NOW + timedelta(minutes=1))
    send_all()

    # Then the log says it failed and why
    failed = NotificationDelivery.objects.get(channel=broken, alert=alert)
    assert (failed.state, failed.attempts) == ("failed", 2)
    assert "unreachable" in failed.last_error
    assert "Connection refused" in failed.last_error
    # and the channel has its own alert, counted in /metrics
    channel_alert = Alert.objects.get(kind=AlertKind.NOTIFICATION_FAILED, state=AlertState.OPEN)
    assert channel_alert.subject == f"channel:{broken.pk}"
    assert "broken" in channel_alert.message
    assert deliveries_counter("webhook", "failed") == failed_before + 1
    # which reaches people through the working channel, not through the broken one
    assert set(NotificationDelivery.objects.filter(alert=channel_alert).values_list("channel__name", flat=True)) == {
        "working"
    }
    # and the working channel delivered the original alert regardless
    assert NotificationDelivery.objects.get(channel=working, alert=alert).state == "sent"


def test_a_channel_never_blocks_the_code_raising_the_alert(webhook, monkeypatch):
    # Given a rule, and a notification listener that blows up
    make_rule(webhook)

    def broken_write(*args, **kwargs):
        raise RuntimeError("notifications are broken")

    monkeypatch.setattr(delivery_services, "_write", broken_write)

    # When an alert is raised
    alert = alert_raise(kind=AlertKind.JOB_FAILED, subject="job", message="failed", now=NOW)

    # Then the alert is there, nothing half-written for notifications
    assert Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).exists()
    assert NotificationDelivery.objects.count() == 0


def test_an_alert_rolled_back_sends_nothing(webhook):
    make_rule(webhook)

    def failing_job() -> None:
        with transaction.atomic():
            alert_raise(kind=AlertKind.JOB_FAILED, subject="job", message="failed", now=NOW)
            raise RuntimeError("the job's transaction fails")

    with pytest.raises(RuntimeError):
        failing_job()
    assert Alert.objects.count() == 0
    assert NotificationDelivery.objects.count() == 0


def test_a_rule_is_throttled_per_channel_and_hour(webhook, receiver):
    # Given a rule allowing 2 messages an hour
    make_rule(webhook, max_messages_per_hour=2)

    # When 4 cameras go offline within the hour
    for _ in range(4):
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=make_camera(), message="down", now=NOW)
    send_all()

    # Then 2 messages went and 2 are logged as throttled
    states = sorted(NotificationDelivery.objects.values_list("state", flat=True))
    assert states == ["sent", "sent", "throttled", "throttled"]
    assert len(receiver.requests) == 2
    assert "Throttled" in NotificationDelivery.objects.filter(state="throttled").first().last_error


def test_email_reaches_a_real_smtp_server(mailbox, db):
    # Given an email channel and a rule
    channel = channel_create(
        name="on call", kind="email", email_to="oncall@example.test, lead@example.test", verify=False
    )
    make_rule(channel)

    # When a critical alert opens and the worker sends it
    alert_raise(
        kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata", message="12 rows in DEFAULT",
        severity=AlertSeverity.CRITICAL, now=NOW,
    )  # fmt: skip
    send_all()

    # Then the SMTP server received it, addressed to both
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["Subject"].startswith("[critical] partition_default_rows opened: 12 rows in DEFAULT")
    assert mailbox.envelopes[0][1] == ["oncall@example.test", "lead@example.test"]
    assert "System alert" in message.get_payload()
    assert NotificationDelivery.objects.get().state == "sent"


def test_an_unreachable_smtp_server_is_a_clear_failure(settings, unreachable_url, db):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", int(unreachable_url.split(":")[2].split("/")[0])
    channel = channel_create(name="mail", kind="email", email_to="a@example.test", max_attempts=1, verify=False)
    make_rule(channel)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="j", message="failed", now=NOW)
    send_all()
    delivery = NotificationDelivery.objects.get(channel=channel)
    assert delivery.state == "failed"
    assert "ConnectionRefusedError" in delivery.last_error


def test_lost_tasks_and_due_retries_are_picked_up_by_the_beat_job(webhook, monkeypatch):
    # Given a delivery whose task never reached the broker, and one whose retry is due
    make_rule(webhook)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="a", message="a", now=NOW)
    queued = []
    monkeypatch.setattr(delivery_services, "deliveries_enqueue", lambda *, delivery_ids: queued.extend(delivery_ids))

    # When beat runs before the pending grace, then after it
    notifications_due_process(now=NOW + timedelta(seconds=30))
    assert queued == []
    notifications_due_process(now=NOW + timedelta(seconds=61))

    # Then the lost delivery is queued again
    assert queued == list(NotificationDelivery.objects.values_list("pk", flat=True))


def test_the_beat_job_runs_through_the_job_runner(webhook):
    from its_camera.models import JobRun
    from notifications.tasks import PROCESS_DUE, process_due

    make_rule(webhook, remind_after_minutes=1)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="a", message="a", now=NOW)
    result = process_due(now=(NOW + timedelta(minutes=5)).isoformat())
    run = JobRun.objects.get(job=PROCESS_DUE)
    assert (run.outcome, run.rows) == ("succeeded", 2)  # one reminder written, one lost opening queued again
    assert result["rows"] == 2
