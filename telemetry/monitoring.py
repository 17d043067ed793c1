"""The telemetry app's readiness check (its_camera.health), registered at start-up by telemetry.apps.

`rollups` reports the rollup lag, e.g. "lag 42 s". It fails (503) past ROLLUP_LAG_ALERT_SECONDS only when
ROLLUP_LAG_FAILS_READINESS is on: a lagging background job does not make a web process unable to serve, so by
default the lag is reported here, alerted (rollup_lag) and exported (its_rollup_lag_seconds), not fatal.
"""

from its_camera.health import register_check
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import rollup_lag

__all__ = ["rollups_ready"]


@register_check("rollups")
def rollups_ready() -> str:
    lag = rollup_lag()
    if lag is None:
        return "not started"
    seconds = int(lag.total_seconds())
    limit = rollup_setting("ROLLUP_LAG_ALERT_SECONDS")
    if seconds > limit:
        if rollup_setting("ROLLUP_LAG_FAILS_READINESS"):
            raise RuntimeError(f"rollups {seconds} s behind (limit {limit} s)")
        return f"lagging: {seconds} s behind (alert past {limit} s)"
    return f"lag {seconds} s"
