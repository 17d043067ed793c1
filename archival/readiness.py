"""Health check "partitions": the current and the next partition of every telemetry table exist.

Not critical: without them rows land in the DEFAULT partition (the sweep moves them later) and every web
process still serves, so a missing partition makes readiness "degraded", not 503 (docs/observability.md)."""

from django.utils import timezone

from archival.selectors.partitions import partitions_missing
from its_camera.health import register_check


@register_check("partitions", needs=("database",))
def partitions_ahead() -> str:
    missing = partitions_missing(now=timezone.now())
    if missing:
        raise RuntimeError(f"partitions missing: {', '.join(missing)} (run `manage.py partitions apply`)")
    return "ok"
