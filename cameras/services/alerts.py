"""Raise, acknowledge and resolve alerts. Every app raises its alerts through here.

At most one active (open or acknowledged) alert exists per (camera, kind, subject), enforced by the
partial unique index `alerts_one_active_per_subject`. `alert_raise` is a single
`INSERT … ON CONFLICT … DO UPDATE` against that index, so two workers raising the same alert at the
same moment end with one row, never an IntegrityError and never a duplicate.

    alert_raise(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata",
                message="12 rows in the default partition", details={"rows": 12})
    alert_resolve(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata")
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from psqlextra.types import ConflictAction

from cameras.choices import ACTIVE_ALERT_STATES, AlertKind, AlertSeverity, AlertState
from cameras.exceptions import ConflictError
from cameras.models import Alert, Camera
from cameras.status_events import alerts_published

SYSTEM = "system"

logger = logging.getLogger(__name__)

# change ("opened" or "resolved"), the alerts' ids, the moment: called inside the caller's transaction.
AlertListener = Callable[..., None]
_listeners: list[AlertListener] = []


def register_alert_listener(listener: AlertListener) -> None:
    """Have `listener(change=…, alert_ids=…, now=…)` called when alerts open or resolve, inside the transaction
    that changed them (a higher app, e.g. notifications, writes its own rows there). A listener that fails is
    rolled back to its savepoint and logged: it never fails the alert, nor the job or request raising it."""
    if listener not in _listeners:
        _listeners.append(listener)


def alerts_changed(*, change: str, alert_ids: list[int], now: datetime) -> None:
    """Tell the registered listeners; for the cameras app's own bulk paths that change alerts without
    alert_raise / alert_resolve (offline alerts)."""
    if not alert_ids:
        return
    for listener in _listeners:
        try:
            with transaction.atomic():
                listener(change=change, alert_ids=alert_ids, now=now)
        except Exception:
            logger.exception("alert listener %s failed for %s alerts %s", listener, change, alert_ids[:10])


def alert_raise(
    *,
    kind: AlertKind | str,
    message: str,
    camera: Camera | None = None,
    subject: str = "",
    severity: AlertSeverity | str = AlertSeverity.WARNING,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert:
    """Open an alert, or update the active one for (camera, kind, subject) with the new message,
    severity and details. An acknowledged alert stays acknowledged: the operator already knows."""
    now = now or timezone.now()
    alert = Alert.objects.on_conflict(
        ["camera", "kind", "subject"],
        ConflictAction.UPDATE,
        index_predicate=Q(state__in=ACTIVE_ALERT_STATES),
        update_values={"message": message, "severity": severity, "details": details or {}, "updated_at": now},
    ).insert_and_get(
        camera=camera,
        kind=kind,
        subject=subject,
        severity=severity,
        state=AlertState.OPEN,
        message=message,
        details=details or {},
        opened_at=now,
        updated_at=now,
        # psqlextra's insert sends only the fields given here: model defaults do not apply.
        acknowledged_by="",
        resolved_by="",
    )
    # Inserted rather than re-raised (opened_at is set on insert, never by the update): new for live subscribers.
    if alert.opened_at >= now:
        alerts_published(change="raised", alert_ids=[alert.pk])
        alerts_changed(change="opened", alert_ids=[alert.pk], now=now)
    return alert


def alert_resolve(
    *,
    kind: AlertKind | str,
    camera: Camera | None = None,
    subject: str = "",
    resolved_by: str = SYSTEM,
    now: datetime | None = None,
) -> int:
    """Resolve the active alert for (camera, kind, subject) if there is one; returns how many were resolved
    (0 or 1). Safe to call when nothing is wrong: the condition that raised it has cleared."""
    now = now or timezone.now()
    # camera=None filters on camera IS NULL: system alerts are resolved by kind and subject alone.
    resolved = Alert.objects.filter(camera=camera, kind=kind, subject=subject, state__in=ACTIVE_ALERT_STATES).update(
        state=AlertState.RESOLVED, resolved_at=now, resolved_by=resolved_by[:150], updated_at=now
    )
    if resolved:  # live events (docs/live.md)
        just_resolved = Q(camera=camera, kind=kind, subject=subject, state=AlertState.RESOLVED, resolved_at=now)
        alerts_published(change="resolved", where=just_resolved)
        if _listeners:
            ids = list(Alert.objects.filter(just_resolved).values_list("pk", flat=True))
            alerts_changed(change="resolved", alert_ids=ids, now=now)
    return resolved


def alert_acknowledge(*, alert: Alert, acknowledged_by: str, now: datetime | None = None) -> Alert:
    """Mark an open alert as seen by someone. Acknowledging an acknowledged alert changes nothing; a
    resolved alert cannot be acknowledged (ConflictError)."""
    now = now or timezone.now()
    updated = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
        state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=acknowledged_by[:150], updated_at=now
    )
    if updated:
        alerts_published(change="acknowledged", alert_ids=[alert.pk])  # live events (docs/live.md)
    alert.refresh_from_db()
    if not updated and alert.state == AlertState.RESOLVED:
        raise ConflictError(f"Alert {alert.pk} is already resolved.")
    return alert


def alert_resolve_one(*, alert: Alert, resolved_by: str, now: datetime | None = None) -> Alert:
    """Resolve one alert by hand (an operator or an integration). Resolving a resolved alert changes
    nothing, so a retried request is harmless."""
    now = now or timezone.now()
    if Alert.objects.filter(pk=alert.pk, state__in=ACTIVE_ALERT_STATES).update(
        state=AlertState.RESOLVED, resolved_at=now, resolved_by=resolved_by[:150], updated_at=now
    ):
        alerts_published(change="resolved", alert_ids=[alert.pk])  # live events (docs/live.md)
        alerts_changed(change="resolved", alert_ids=[alert.pk], now=now)
    alert.refresh_from_db()
    return alert
