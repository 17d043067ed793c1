"""Raise, acknowledge and resolve alerts. Every app raises its alerts through here.

At most one active (open or acknowledged) alert exists per (camera, kind, subject), enforced by the
partial unique index `alerts_one_active_per_subject`. `alert_raise` is a single
`INSERT … ON CONFLICT … DO UPDATE` against that index, so two workers raising the same alert at the
same moment end with one row, never an IntegrityError and never a duplicate.

    alert_raise(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata",
                message="12 rows in the default partition", details={"rows": 12})
    alert_resolve(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata")
"""

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone
from psqlextra.types import ConflictAction

from cameras.choices import ACTIVE_ALERT_STATES, AlertKind, AlertSeverity, AlertState
from cameras.exceptions import ConflictError
from cameras.models import Alert, Camera
from cameras.status_events import alerts_published

SYSTEM = "system"


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
    alert.refresh_from_db()
    return alert
