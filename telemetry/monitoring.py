"""The telemetry app's health check (its_camera.health), registered at start-up by telemetry.apps.

`rollups` reports the rollup lag, e.g. "lag 42 s", and fails past ROLLUP_LAG_ALERT_SECONDS. The failure makes
readiness "degraded" (200, the check named) unless ROLLUP_LAG_FAILS_READINESS is on, when it is critical (503):
a lagging background job does not make a web process unable to serve, so by default the lag is reported,
alerted (rollup_lag) and exported (its_rollup_lag_seconds), not fatal.
"""

from its_camera.health import register_check
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import rollup_lag

__all__ = ["rollups_ready"]


def lag_fails_readiness() -> bool:
    return bool(rollup_setting("ROLLUP_LAG_FAILS_READINESS"))


@register_check("rollups", critical=lag_fails_readiness, needs=("database",))
def rollups_ready() -> str:
    lag = rollup_lag()
    if lag is None:
        return "not started"
    seconds = int(lag.total_seconds())
    limit = rollup_setting("ROLLUP_LAG_ALERT_SECONDS")
    if seconds > limit:
        raise RuntimeError(f"rollups {seconds} s behind (alert past {limit} s)")
    return f"lag {seconds} s"
