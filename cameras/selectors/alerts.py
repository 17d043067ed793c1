"""Read alerts."""

import uuid

from django.db.models import QuerySet

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
