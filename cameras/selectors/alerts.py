"""Read alerts."""

import uuid

from django.db.models import Count, QuerySet

from cameras.choices import ACTIVE_ALERT_STATES, AlertSeverity
from cameras.models import Alert


def alert_list(
    *,
    states: list[str] | None = None,
    kinds: list[str] | None = None,
    severities: list[str] | None = None,
    camera_id: uuid.UUID | None = None,
) -> QuerySet[Alert]:
    """Alerts, newest first, with their camera's name loaded in the same query."""
    queryset = Alert.objects.select_related("camera")
    if states:
        queryset = queryset.filter(state__in=states)
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    if severities:
        queryset = queryset.filter(severity__in=severities)
    if camera_id is not None:
        queryset = queryset.filter(camera_id=camera_id)
    return queryset.order_by("-id")


def alert_get(*, alert_id: int) -> Alert | None:
    return Alert.objects.select_related("camera").filter(pk=alert_id).first()


def alert_counts_by_severity() -> list[dict[str, object]]:
    """Active (open or acknowledged) alerts counted per severity and state, most severe first: one grouped
    query on idx_alerts_state_opened, whatever the number of alerts."""
    rank: dict[str, int] = {AlertSeverity.CRITICAL: 0, AlertSeverity.WARNING: 1, AlertSeverity.INFO: 2}
    counts: dict[str, dict[str, object]] = {
        severity: {"severity": severity, "open": 0, "acknowledged": 0} for severity in rank
    }
    rows = (
        Alert.objects.filter(state__in=ACTIVE_ALERT_STATES)
        .values("severity", "state")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        entry = counts.setdefault(row["severity"], {"severity": row["severity"], "open": 0, "acknowledged": 0})
        entry[row["state"]] = row["count"]
    return sorted(counts.values(), key=lambda entry: rank.get(str(entry["severity"]), 9))
