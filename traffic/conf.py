"""Traffic settings, each overridable in Django settings or the environment (docs/traffic.md). Read at call time."""

from typing import Any

import environ
from django.conf import settings

env = environ.Env()

DEFAULTS: dict[str, Any] = {
    # Two observations of a track are consecutive (a step that can cross a line) only when at most this far apart:
    # a tracker that lost an object for longer has not seen where it went.
    "TRAFFIC_TRACK_MAX_GAP_SECONDS": env.float("TRAFFIC_TRACK_MAX_GAP_SECONDS", default=10.0),
    # Limits on what operators and integrations may define.
    "TRAFFIC_MAX_LINES_PER_CAMERA": env.int("TRAFFIC_MAX_LINES_PER_CAMERA", default=32),
    "TRAFFIC_MAX_REGIONS_PER_CAMERA": env.int("TRAFFIC_MAX_REGIONS_PER_CAMERA", default=16),
    # Longest range a counts request may ask for, per granularity (days).
    "TRAFFIC_MAX_RANGE_DAYS_15MIN": env.int("TRAFFIC_MAX_RANGE_DAYS_15MIN", default=7),
    "TRAFFIC_MAX_RANGE_DAYS_HOUR": env.int("TRAFFIC_MAX_RANGE_DAYS_HOUR", default=31),
    "TRAFFIC_MAX_RANGE_DAYS_DAY": env.int("TRAFFIC_MAX_RANGE_DAYS_DAY", default=366),
}

MAX_POLYGON_VERTICES = 32
MIN_POLYGON_VERTICES = 3
MIN_TRACK_GAP_SECONDS, MAX_TRACK_GAP_SECONDS = 0.01, 300.0


def traffic_setting(name: str) -> Any:
    """Django settings first, then the environment/default above."""
    return getattr(settings, name, DEFAULTS[name])


def track_max_gap_seconds() -> float:
    """The configured gap, held to its physical range (a typo must not make every pair 'consecutive')."""
    value = float(traffic_setting("TRAFFIC_TRACK_MAX_GAP_SECONDS"))
    return min(MAX_TRACK_GAP_SECONDS, max(MIN_TRACK_GAP_SECONDS, value))
