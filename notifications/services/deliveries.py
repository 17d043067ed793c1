"""Alerts to messages: which rules an alert matches, the delivery rows (the outbox) written with the alert, and
sending them — once, with retries and backoff, throttled per rule and channel.

    opened/resolved alert ──(same transaction)──> NotificationDelivery rows, state pending
                          ──(after commit)──────> deliver_notification task per row (Celery)
    worker: claim (pending → sending, lease) → POST / email → sent | retrying (backoff) | failed (+ alert)
    beat (every minute): reminders due, and rows whose task was lost (broker down, worker killed)

A channel that fails never blocks the code that raised the alert: nothing is sent in that transaction, and a
failing listener is rolled back to its savepoint (cameras.services.alerts).
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Value
from django.urls import reverse
from django.utils import timezone

from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.models import Alert
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera import metrics
from notifications.choices import DUE_STATES, SEVERITY_RANK, ChannelKind, DeliveryEvent, DeliveryState
from notifications.models import AlertRule, NotificationChannel, NotificationDelivery
from notifications.senders import DeliveryError, SendResult, email_send, webhook_post

logger = logging.getLogger(__name__)

DELIVERIES = metrics.counter(
    "its_notification_deliveries_total",
    "Notification attempts by channel kind and outcome (sent, retrying, failed, throttled, enqueue_failed).",
    ["channel_kind", "outcome"],
)


def _setting(name: str) -> Any:
    return getattr(settings, name)


# --- Matching and the outbox ----------------------------------------------------------------------


def rule_matches(rule: AlertRule, alert: Alert) -> bool:
    """Does `alert` match `rule`'s kinds, minimum severity, zones and camera tags (empty criteria match all)."""
    if rule.kinds and alert.kind not in rule.kinds:
        return False
    if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK.get(rule.min_severity, 0):
        return False
    zone_ids = {zone.pk for zone in rule.zones.all()}  # prefetched
    if zone_ids and (alert.camera is None or alert.camera.zone_id not in zone_ids):
        return False
    return not (rule.camera_tags and (alert.camera is None or not set(rule.camera_tags) <= set(alert.camera.tags)))


def _feeds_back(channel: NotificationChannel, alert: Alert) -> bool:
    # The alert about a failing channel is not sent through that channel.
    return alert.kind == AlertKind.NOTIFICATION_FAILED and alert.subject == channel_subject(channel)


def channel_subject(channel: NotificationChannel) -> str:
    return f"channel:{channel.pk}"


def alert_payload(alert: Alert, *, event: str, rule: AlertRule | None, now: datetime) -> dict[str, Any]:
    """The message body (the webhook's JSON; the email is written from it), a snapshot taken with the event."""
    camera = alert.camera
    base = _setting("NOTIFICATIONS_ADMIN_BASE_URL").rstrip("/")
    return {
        "event": f"alert.{event}",
        "rule": rule.name if rule else None,
        "at": now.isoformat(),
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "subject": alert.subject,
            "severity": alert.severity,
            "state": alert.state,
            "message": alert.message[:2000],
            "details": alert.details,
            "opened_at": alert.opened_at.isoformat(),
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "camera": {
                "id": str(camera.pk),
                "name": camera.name,
                "location": camera.location,
                "zone_id": str(camera.zone_id) if camera.zone_id else None,
            }
            if camera
            else None,
            "admin_url": base + reverse("admin:cameras_alert_change", args=[alert.pk]),
        },
    }


@dataclass
class _Planned:
    alert: Alert | None
    rule: AlertRule
    channel: NotificationChannel
    event: str


def _sent_last_hour(pairs: set[tuple[int, int]], *, now: datetime) -> Counter[tuple[int, int]]:
    if not pairs:
        return Counter()
    rows = (
        NotificationDelivery.objects.filter(
            channel_id__in={channel for _, channel in pairs},
            rule_id__in={rule for rule, _ in pairs},
            created_at__gte=now - timedelta(hours=1),
        )
        .exclude(state=DeliveryState.THROTTLED)
        .values_list("rule_id", "channel_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Counter({(rule, channel): n for rule, channel, n in rows})


def _write(planned: list[_Planned], *, now: datetime) -> list[NotificationDelivery]:
    """Insert the planned deliveries (skipping ones that exist), throttled per (rule, channel) and hour, and
    enqueue the ones to send after the surrounding transaction commits."""
    if not planned:
        return []
    alert_ids = {item.alert.pk for item in planned if item.alert is not None}
    existing: set[tuple[int | None, int | None, int, str]] = set(
        NotificationDelivery.objects.filter(alert_id__in=alert_ids).values_list(
            "alert_id", "rule_id", "channel_id", "event"
        )
    )
    counts = _sent_last_hour({(item.rule.pk, item.channel.pk) for item in planned}, now=now)
    rows = []
    for item in planned:
        key = (item.alert.pk if item.alert else None, item.rule.pk, item.channel.pk, item.event)
        if key in existing:
            continue
        existing.add(key)
        pair = (item.rule.pk, item.channel.pk)
        limit = item.rule.max_messages_per_hour
        throttled = bool(limit) and counts[pair] >= limit
        if not throttled:
            counts[pair] += 1
        else:
            DELIVERIES.labels(channel_kind=item.channel.kind, outcome="throttled").inc()
        rows.append(
            NotificationDelivery(
                alert=item.alert,
                rule=item.rule,
                channel=item.channel,
                event=item.event,
                state=DeliveryState.THROTTLED if throttled else DeliveryState.PENDING,
                payload=alert_payload(item.alert, event=item.event, rule=item.rule, now=now) if item.alert else {},
                created_at=now,
                # A pending row whose task never arrives is picked up by the beat sweep after this grace.
                next_attempt_at=None if throttled else now + timedelta(seconds=_setting("NOTIFICATIONS_PENDING_GRACE")),
                last_error=f"Throttled: over {limit} messages per hour for this rule and channel." if throttled else "",
            )
        )
    created = NotificationDelivery.objects.bulk_create(rows)
    to_send = [row.pk for row in created if row.state == DeliveryState.PENDING]
    if to_send:
        transaction.on_commit(partial(deliveries_enqueue, delivery_ids=to_send), robust=True)
    return created


def deliveries_for_alert_change(*, change: str, alert_ids: list[int], now: datetime) -> None:
    """The alert services' listener (see deliveries_write)."""
    deliveries_write(change=change, alert_ids=alert_ids, now=now)


def deliveries_write(*, change: str, alert_ids: list[int], now: datetime) -> list[NotificationDelivery]:
    """The alert services' listener: write the deliveries for alerts just opened or resolved (in the caller's
    transaction). Opened: one per matching rule and enabled channel. Resolved: one per (rule, channel) that
    was told about the opening, when the rule wants resolutions."""
    if change == "opened":
        rules = list(AlertRule.objects.filter(enabled=True).prefetch_related("zones", "channels"))
        if not rules:
            return []
        alerts = list(Alert.objects.filter(pk__in=alert_ids).select_related("camera"))
        planned = [
            _Planned(alert=alert, rule=rule, channel=channel, event=DeliveryEvent.OPENED)
            for alert in alerts
            for rule in rules
            if rule_matches(rule, alert)
            for channel in rule.channels.all()
            if channel.enabled and not _feeds_back(channel, alert)
        ]
        return _write(planned, now=now)
    if change == "resolved":
        told = (
            NotificationDelivery.objects.filter(alert_id__in=alert_ids, event=DeliveryEvent.OPENED)
            .exclude(state=DeliveryState.THROTTLED)
            .filter(rule__notify_resolved=True, rule__enabled=True, channel__enabled=True)
            .select_related("alert__camera", "rule", "channel")
        )
        planned = []
        for delivery in told:
            assert delivery.rule is not None
            planned.append(
                _Planned(
                    alert=delivery.alert, rule=delivery.rule, channel=delivery.channel, event=DeliveryEvent.RESOLVED
                )
            )
        return _write(planned, now=now)
    return []


def deliveries_enqueue(*, delivery_ids: list[int]) -> int:
    """Queue a send task per delivery. Never raises: with the broker down the rows stay due and the beat sweep
    sends them later (counted as enqueue_failed)."""
    from notifications.tasks import deliver_notification

    queued = 0
    for delivery_id in delivery_ids:
        try:
            deliver_notification.apply_async(args=(delivery_id,), retry=False)
            queued += 1
        except Exception:
            logger.warning("could not queue notification delivery %s; the beat sweep will", delivery_id, exc_info=True)
            DELIVERIES.labels(channel_kind="", outcome="enqueue_failed").inc()
    return queued


# --- Sending --------------------------------------------------------------------------------------


def _email_text(payload: dict[str, Any]) -> tuple[str, str]:
    alert = payload.get("alert") or {}
    event = str(payload.get("event", "")).removeprefix("alert.")
    camera = alert.get("camera") or {}
    subject = f"[{alert.get('severity', 'info')}] {alert.get('kind', 'alert')} {event}: {alert.get('message', '')}"
    lines = [
        f"Alert {alert.get('id')} {event} ({alert.get('kind')}, {alert.get('severity')}).",
        "",
        str(alert.get("message", "")),
        "",
        f"Camera: {camera.get('name')} ({camera.get('location')})" if camera else "System alert",
        f"Opened: {alert.get('opened_at')}",
    ]
    if alert.get("resolved_at"):
        lines.append(f"Resolved: {alert.get('resolved_at')}")
    lines += [f"Rule: {payload.get('rule')}", "", str(alert.get("admin_url", ""))]
    return subject.replace("\n", " ")[:200], "\n".join(lines)


def channel_transport_send(
    channel: NotificationChannel, *, payload: dict[str, Any], delivery_id: int | None
) -> SendResult:
    """Send one message through `channel` now, or raise DeliveryError."""
    if channel.kind == ChannelKind.WEBHOOK:
        return webhook_post(
            url=channel.url,
            secret=channel.secret,
            payload={**payload, "delivery_id": delivery_id},
            timeout=channel.timeout_seconds,
            timestamp=int(time.time()),
            delivery_id=delivery_id,
        )
    subject, body = _email_text(payload)
    return email_send(recipients=channel.recipients, subject=subject, body=body, timeout=channel.timeout_seconds)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failure: base * 4^(attempts-1), capped."""
    base = _setting("NOTIFICATIONS_RETRY_BASE_SECONDS")
    return timedelta(seconds=min(base * 4 ** max(attempts - 1, 0), _setting("NOTIFICATIONS_RETRY_MAX_SECONDS")))


@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: int
    state: str
    retry_in: float | None = None
    error: str = ""


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AttemptOutcome | None:
    """Claim a due delivery and send it once. None: not due (sent, failed, or another worker holds it)."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=_setting("NOTIFICATIONS_SEND_LEASE_SECONDS"))
    claimable = Q(state__in=[DeliveryState.PENDING, DeliveryState.RETRYING]) | Q(
        state=DeliveryState.SENDING, next_attempt_at__lte=now
    )
    claimed = (
        NotificationDelivery.objects.filter(claimable, pk=delivery_id)
        .filter(Q(state=DeliveryState.PENDING) | Q(next_attempt_at__lte=now))
        .update(state=DeliveryState.SENDING, attempts=F("attempts") + 1, next_attempt_at=lease)
    )
    if not claimed:
        return None
    delivery = NotificationDelivery.objects.select_related("channel").get(pk=delivery_id)
    channel = delivery.channel
    try:
        if not channel.enabled:
            raise DeliveryError(f"Channel {channel.name!r} is disabled.")
        result = channel_transport_send(channel, payload=delivery.payload, delivery_id=delivery.pk)
    except DeliveryError as error:
        return _failed(delivery, error=str(error), now=now)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.SENT, sent_at=now, response_status=result.status, next_attempt_at=None, last_error=""
    )
    DELIVERIES.labels(channel_kind=channel.kind, outcome="sent").inc()
    alert_resolve(kind=AlertKind.NOTIFICATION_FAILED, subject=channel_subject(channel), now=now)
    return AttemptOutcome(delivery_id=delivery.pk, state=DeliveryState.SENT)


def _failed(delivery: NotificationDelivery, *, error: str, now: datetime) -> AttemptOutcome:
    channel = delivery.channel
    if delivery.attempts < channel.max_attempts and channel.enabled:
        delay = retry_delay(delivery.attempts)
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.RETRYING, next_attempt_at=now + delay, last_error=error[:2000]
        )
        DELIVERIES.labels(channel_kind=channel.kind, outcome="retrying").inc()
        logger.warning("notification %s to %s failed (attempt %s): %s", delivery.pk, channel, delivery.attempts, error)
        return AttemptOutcome(delivery.pk, DeliveryState.RETRYING, retry_in=delay.total_seconds(), error=error)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.FAILED, next_attempt_at=None, last_error=error[:2000]
    )
    DELIVERIES.labels(channel_kind=channel.kind, outcome="failed").inc()
    logger.error("notification %s to %s gave up after %s attempts: %s", delivery.pk, channel, delivery.attempts, error)
    # No silent failure: the channel's own alert (not sent through this channel; see _feeds_back).
    alert_raise(
        kind=AlertKind.NOTIFICATION_FAILED,
        subject=channel_subject(channel),
        severity=AlertSeverity.WARNING,
        message=f"Notification channel {channel.name!r} failed {delivery.attempts} time(s): {error}"[:2000],
        details={"channel_id": channel.pk, "channel": channel.name, "delivery_id": delivery.pk},
        now=now,
    )
    return AttemptOutcome(delivery.pk, DeliveryState.FAILED, error=error)


def delivery_retry(*, delivery: NotificationDelivery, now: datetime | None = None) -> bool:
    """Send a failed (or throttled) delivery again from attempt one (an operator's "retry"), after commit."""
    now = now or timezone.now()
    updated = NotificationDelivery.objects.filter(
        pk=delivery.pk, state__in=[DeliveryState.FAILED, DeliveryState.THROTTLED]
    ).update(state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, last_error="")
    if updated:
        transaction.on_commit(partial(deliveries_enqueue, delivery_ids=[delivery.pk]), robust=True)
    return bool(updated)


def channel_send_test(
    *, channel: NotificationChannel, requested_by: str, now: datetime | None = None
) -> NotificationDelivery:
    """Send a test message through `channel` now (one attempt, no retry, no alert) and log it."""
    now = now or timezone.now()
    payload = {
        "event": "test",
        "at": now.isoformat(),
        "message": f"Test message from the ITS Camera Platform, requested by {requested_by}.",
        "alert": None,
    }
    delivery = NotificationDelivery.objects.create(
        channel=channel,
        event=DeliveryEvent.TEST,
        state=DeliveryState.SENDING,
        payload=payload,
        attempts=1,
        created_at=now,
        requested_by=requested_by[:150],
    )
    try:
        result = channel_transport_send(channel, payload=payload, delivery_id=delivery.pk)
    except DeliveryError as error:
        delivery.state, delivery.last_error = DeliveryState.FAILED, str(error)[:2000]
        DELIVERIES.labels(channel_kind=channel.kind, outcome="failed").inc()
    else:
        delivery.state, delivery.sent_at, delivery.response_status = DeliveryState.SENT, now, result.status
        DELIVERIES.labels(channel_kind=channel.kind, outcome="sent").inc()
    delivery.save(update_fields=["state", "last_error", "sent_at", "response_status"])
    return delivery


# --- The beat job: reminders and lost sends ---------------------------------------------------------


def reminders_write(*, now: datetime, limit: int) -> list[NotificationDelivery]:
    """Reminder deliveries for alerts still open (not acknowledged) past their rule's remind_after, once per
    (alert, rule, channel) that was told about the opening."""
    already = NotificationDelivery.objects.filter(
        alert=OuterRef("alert"), rule=OuterRef("rule"), channel=OuterRef("channel"), event=DeliveryEvent.REMINDER
    )
    remind_after = ExpressionWrapper(
        F("rule__remind_after_minutes") * Value(timedelta(minutes=1)), output_field=DurationField()
    )
    due = (
        NotificationDelivery.objects.filter(
            event=DeliveryEvent.OPENED,
            alert__state=AlertState.OPEN,
            rule__enabled=True,
            rule__remind_after_minutes__isnull=False,
            channel__enabled=True,
        )
        .exclude(state=DeliveryState.THROTTLED)
        .alias(remind_after=remind_after)
        .filter(alert__opened_at__lte=Value(now) - F("remind_after"))
        .filter(~Exists(already))
        .select_related("alert__camera", "rule", "channel")
        .order_by("alert__opened_at")[:limit]
    )
    planned = []
    for delivery in due:
        assert delivery.rule is not None
        planned.append(
            _Planned(alert=delivery.alert, rule=delivery.rule, channel=delivery.channel, event=DeliveryEvent.REMINDER)
        )
    with transaction.atomic():
        return _write(planned, now=now)


def deliveries_due(*, now: datetime, limit: int) -> list[int]:
    """Deliveries whose send task was lost or whose retry is due: pending past the grace, retrying past
    next_attempt_at, or sending past the lease (the worker died)."""
    return list(
        NotificationDelivery.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def notifications_due_process(*, now: datetime | None = None) -> int:
    """The beat job: write due reminders and queue every due delivery. Bounded; returns rows touched."""
    now = now or timezone.now()
    limit = _setting("NOTIFICATIONS_BATCH_SIZE")
    reminders = reminders_write(now=now, limit=limit)
    due = deliveries_due(now=now, limit=limit)
    deliveries_enqueue(delivery_ids=due)
    return len(reminders) + len(due)
