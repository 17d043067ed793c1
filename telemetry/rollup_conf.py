"""The rollup and analytics settings, each overridable in Django settings or the environment
(docs/analytics.md). Read at call time, so tests and operators can change them without a restart."""

from typing import Any

import environ
from django.conf import settings

env = environ.Env()

DEFAULTS: dict[str, Any] = {
    # Late rows up to this far behind the watermark are picked up by the next run.
    "ROLLUP_GRACE_SECONDS": env.int("ROLLUP_GRACE_SECONDS", default=300),
    # Event time one refresh step covers (one transaction); whole hours.
    "ROLLUP_MAX_SPAN_HOURS": env.int("ROLLUP_MAX_SPAN_HOURS", default=1),
    # A run stops after this many steps or this many seconds; when behind, it queues the next run at once.
    "ROLLUP_MAX_STEPS_PER_RUN": env.int("ROLLUP_MAX_STEPS_PER_RUN", default=48),
    "ROLLUP_RUN_SECONDS": env.float("ROLLUP_RUN_SECONDS", default=45.0),
    # A first run (no watermark yet) starts at the oldest frame partition, but no further back than this.
    "ROLLUP_INITIAL_BACKFILL_DAYS": env.int("ROLLUP_INITIAL_BACKFILL_DAYS", default=35),
    # Minute rows are deleted after this many days, a batch per run; hour and day rows are kept.
    "ROLLUP_MINUTE_RETENTION_DAYS": env.int("ROLLUP_MINUTE_RETENTION_DAYS", default=7),
    "ROLLUP_PRUNE_BATCH_SIZE": env.int("ROLLUP_PRUNE_BATCH_SIZE", default=10_000),
    # The rollup_lag alert opens past this lag; /health/ready fails past it only when the flag is on.
    "ROLLUP_LAG_ALERT_SECONDS": env.int("ROLLUP_LAG_ALERT_SECONDS", default=900),
    "ROLLUP_LAG_FAILS_READINESS": env.bool("ROLLUP_LAG_FAILS_READINESS", default=False),
    # Longest range an analytics request may ask for: hourly series, and daily series / detections by day.
    "ANALYTICS_HOURLY_MAX_DAYS": env.int("ANALYTICS_HOURLY_MAX_DAYS", default=31),
    "ANALYTICS_DAILY_MAX_DAYS": env.int("ANALYTICS_DAILY_MAX_DAYS", default=366),
}


def rollup_setting(name: str) -> Any:
    """Django settings first, then the environment/default above."""
    return getattr(settings, name, DEFAULTS[name])
