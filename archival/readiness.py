"""Readiness check "partitions": the current and the next partition of every telemetry table exist."""

from django.utils import timezone

from archival.selectors.partitions import partitions_missing
from its_camera.health import register_check


@register_check("partitions")
def partitions_ahead() -> str:
    missing = partitions_missing(now=timezone.now())
    if missing:
        raise RuntimeError(f"partitions missing: {', '.join(missing)} (run `manage.py partitions apply`)")
    return "ok"
