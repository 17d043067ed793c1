"""Analytics dashboard in the admin, and the rollup status it is read from.

The page sits under the rollup watermark's admin (`/admin/telemetry/rollupwatermark/dashboard/`), linked from
that changelist and from the admin index's operations pages. Every panel is one or two bounded queries on a
rollup table through its (scope, bucket) or (scope, scope_id, bucket) index, or on the alerts' (state,
opened_at) index, so the page costs the same on a billion-row database as on an empty one (tests count the
queries). Charts are drawn by the vendored Chart.js (its_camera/static/vendor/chartjs), no CDN.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from its_camera import admin_pages
from telemetry.models import RollupWatermark
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import (
    dashboard_detections_by_class,
    dashboard_ingest_series,
    dashboard_open_alerts,
    dashboard_recent_minutes,
    dashboard_slowest_cameras,
    rollup_watermark,
)

DASHBOARD_URL_NAME = "telemetry_analytics_dashboard"

# Panels that higher apps add to this dashboard at start-up (traffic: objects beside detections), so telemetry
# does not import them: `provider(now=...)` returns {"template": ..., **context} rendered under the panel.
DashboardPanel = Callable[..., dict[str, Any]]
_panels: dict[str, DashboardPanel] = {}


def register_dashboard_panel(name: str, provider: DashboardPanel) -> None:
    """Add a panel to the ingest and detections dashboard (re-registering a name replaces it)."""
    _panels[name] = provider


def dashboard_context(*, now: Any = None) -> dict[str, Any]:
    now = now or timezone.now()
    ingest = dashboard_ingest_series(now=now)
    minutes = dashboard_recent_minutes(now=now)
    detections = dashboard_detections_by_class(now=now)
    watermark = rollup_watermark()
    lag = (now - watermark.watermark).total_seconds() if watermark else None
    charts = {
        "ingest": {
            "labels": [row["bucket"].strftime("%H:00") for row in ingest],
            "frames_per_second": [round(row["frames_per_second"], 2) for row in ingest],
            "failure_rate_percent": [
                round(row["failure_rate"] * 100, 2) if row["failure_rate"] is not None else None for row in ingest
            ],
        },
        "minutes": {
            "labels": [row["bucket"].strftime("%H:%M") for row in minutes],
            "frames_per_second": [round(row["frames"] / 60, 2) for row in minutes],
        },
        "detections": {
            "labels": [row["object_type"] for row in detections],
            "counts": [row["detections"] for row in detections],
        },
    }
    return {
        "generated_at": now,
        "ingest": ingest,
        "frames_24h": sum(row["frames"] for row in ingest),
        "failed_24h": sum(row["failed_frames"] for row in ingest),
        "detections": detections,
        "slowest": dashboard_slowest_cameras(now=now),
        "alerts": dashboard_open_alerts(),
        "watermark": watermark,
        "lag_seconds": int(lag) if lag is not None else None,
        "lag_alert_seconds": rollup_setting("ROLLUP_LAG_ALERT_SECONDS"),
        "charts": charts,
        "panels": [provider(now=now) for provider in _panels.values()],
    }


@admin.register(RollupWatermark)
class RollupWatermarkAdmin(admin.ModelAdmin):
    """Read-only: how far the rollups are complete and what the last run did; the dashboard hangs off it."""

    list_display = ["name", "watermark", "lag", "last_run_at", "last_run_rows", "last_run_raw_rows", "last_run_ms"]
    readonly_fields = [
        "name", "watermark", "last_run_at", "last_run_rows", "last_run_raw_rows", "last_run_ms", "last_error",
    ]  # fmt: skip
    change_list_template = "admin/analytics/rollupwatermark_change_list.html"

    @admin.display(description="lag")
    def lag(self, obj: RollupWatermark) -> str:
        return f"{int((timezone.now() - obj.watermark).total_seconds())} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RollupWatermark | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RollupWatermark | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/", self.admin_site.admin_view(self.dashboard_view), name=DASHBOARD_URL_NAME
        )  # before the default object URLs, which would read "dashboard" as an object id
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Ingest and detections",
            "changelist_url": reverse("admin:telemetry_rollupwatermark_changelist"),
            **dashboard_context(),
        }
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)


admin_pages.register(
    title="Ingest and detections",
    url_name=f"admin:{DASHBOARD_URL_NAME}",
    description="Ingest and failure rate over 24 h, detections by class, slowest cameras, open alerts (rollups).",
    permission="telemetry.view_rollupwatermark",
)
