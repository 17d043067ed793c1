"""The admin home's ingest panel (its_camera.admin_pages registry; imported by telemetry/admin.py)."""

from datetime import datetime
from typing import Any

from django.urls import reverse

from its_camera import admin_pages
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import ingest_last_hour, rollup_lag

SPARKLINE_WIDTH = 240
SPARKLINE_HEIGHT = 40


def sparkline_points(values: list[float], *, width: int = SPARKLINE_WIDTH, height: int = SPARKLINE_HEIGHT) -> str:
    """An SVG polyline's points for `values` scaled into width by height (no script, no chart library)."""
    if not values:
        return ""
    top = max(values) or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{index * step:.1f},{height - value / top * height:.1f}" for index, value in enumerate(values))


def ingest_panel(*, now: datetime) -> dict[str, Any]:
    hour = ingest_last_hour(now=now)
    lag = rollup_lag(now=now)
    return {
        **hour,
        "failure_percent": hour["failure_rate"] * 100 if hour["failure_rate"] is not None else None,
        "sparkline": sparkline_points(hour["per_minute_frames_per_second"]),
        "sparkline_width": SPARKLINE_WIDTH,
        "sparkline_height": SPARKLINE_HEIGHT,
        "lag_seconds": int(lag.total_seconds()) if lag is not None else None,
        "lag_alert_seconds": rollup_setting("ROLLUP_LAG_ALERT_SECONDS"),
        "dashboard_url": reverse("admin:telemetry_analytics_dashboard"),
    }


admin_pages.register_panel(
    key="ingest",
    title="Ingest, last hour",
    order=30,
    template="admin/operations/panels/ingest.html",
    context=ingest_panel,
    permission="telemetry.view_rollupwatermark",
)
