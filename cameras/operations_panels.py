"""The admin home's fleet and alert panels (its_camera.admin_pages registry; imported by cameras/admin.py)."""

from datetime import datetime
from typing import Any

from django.urls import reverse

from cameras.selectors.alerts import alert_counts_by_severity
from cameras.selectors.cameras import fleet_status_totals
from its_camera import admin_pages


def fleet_panel(*, now: datetime) -> dict[str, Any]:
    changelist = reverse("admin:cameras_camera_changelist")
    return {
        "totals": fleet_status_totals(),
        "changelist_url": changelist,
        "fleet_url": reverse("admin:cameras_camera_fleet_status"),
    }


def alerts_panel(*, now: datetime) -> dict[str, Any]:
    rows = alert_counts_by_severity()
    return {
        "rows": rows,
        "open_total": sum(int(row["open"]) for row in rows),  # type: ignore[call-overload]
        "changelist_url": reverse("admin:cameras_alert_changelist"),
    }


admin_pages.register_panel(
    key="fleet",
    title="Fleet",
    order=10,
    template="admin/operations/panels/fleet.html",
    context=fleet_panel,
    permission="cameras.view_camera",
)
admin_pages.register_panel(
    key="alerts",
    title="Open alerts",
    order=20,
    template="admin/operations/panels/alerts.html",
    context=alerts_panel,
    permission="cameras.view_alert",
)
