"""The admin home's storage panel (its_camera.admin_pages registry; imported by archival/admin.py)."""

from datetime import datetime
from typing import Any

from django.urls import reverse

from archival.selectors.storage import GROWTH_WINDOW, storage_by_table
from its_camera import admin_pages

CAP_WARNING_DAYS = 14  # fewer days than this before the cap: shown in red


def storage_panel(*, now: datetime) -> dict[str, Any]:
    return {
        "tables": storage_by_table(now=now),
        "growth_window_days": GROWTH_WINDOW.days,
        "warning_days": CAP_WARNING_DAYS,
        "health_url": reverse("admin:archival_partitionhealth_changelist"),
        "policies_url": reverse("admin:archival_retentionpolicy_changelist"),
    }


admin_pages.register_panel(
    key="storage",
    title="Storage",
    order=40,
    template="admin/operations/panels/storage.html",
    context=storage_panel,
    permission="archival.view_partitionhealth",
)
admin_pages.register(
    title="Partition health",
    url_name="admin:archival_partitionhealth_changelist",
    description="Partitions per table: sizes, ranges, DEFAULT rows, the next missing partition, size caps.",
)
