"""Read-only admin for the partitioned telemetry tables.

These tables hold billions of rows, so the changelists never run a full COUNT(*) (the paginator shows
PostgreSQL's estimate), sort on an index (id, newest ingested first; timestamp once a camera is
chosen, on the (camera_id, timestamp) index), and filter by camera and by a time window that lets
PostgreSQL prune partitions. The admin cannot register composite-primary-key models, so it shows the
unmanaged twins over the same tables (see FrameMetadataRecord).
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Page, Paginator
from django.db import DatabaseError, connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from telemetry import (
    admin_dashboards,  # noqa: F401 - registers the rollup status admin and its dashboard
    operations_panels,  # noqa: F401 - registers the admin home's ingest panel
)
from telemetry.choices import StorageTier
from telemetry.models import (
    HOST_METRICS_CAMERA_ID,
    DetectionRecord,
    FrameMetadataRecord,
    PartitionTier,
    SystemMetricRecord,
)
from telemetry.selectors.timeline import frame_detections


class EstimatedCountPaginator(Paginator):
    """Counts nothing: the total is PostgreSQL's estimate for the filtered query (EXPLAIN), raised to
    what the first page probe saw so the first page and its "next" link are always right."""

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        probe = len(queryset[: self.per_page + 1])
        estimate = 0
        try:
            connection = connections[queryset.db]
            sql, params = queryset.query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            estimate = int(plan[0]["Plan"]["Plan Rows"])
        except (EmptyResultSet, DatabaseError, KeyError, IndexError, TypeError, ValueError):
            pass
        return max(estimate, probe)

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return Page(self.object_list[bottom : bottom + self.per_page], number, self)


class CameraIdFilter(admin.SimpleListFilter):
    """A text box for a camera id: a dropdown of every camera does not scale to a fleet."""

    title = "camera id"
    parameter_name = "camera_id"
    template = "admin/telemetry/input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("", "")]

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Any:
        hidden = [(k, v) for k, v in changelist.get_filters_params().items() if k != self.parameter_name]
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value(),
            "placeholder": "camera UUID",
            "hidden_params": [(k, v[-1] if isinstance(v, list) else v) for k, v in hidden],
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        try:
            camera_id = uuid.UUID(value.strip())
        except ValueError:
            return queryset.none()
        return queryset.filter(camera_id=camera_id)


class TimeWindowFilter(admin.SimpleListFilter):
    title = "time"
    parameter_name = "window"
    WINDOWS = {
        "15m": ("Last 15 minutes", timedelta(minutes=15)),
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(hours=24)),
        "7d": ("Last 7 days", timedelta(days=7)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        window = self.WINDOWS.get(self.value() or "")
        if window is None:
            return queryset
        return queryset.filter(timestamp__gte=timezone.now() - window[1])


LOADABLE_FROM = datetime(1, 1, 2, tzinfo=UTC)
LOADABLE_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


class TelemetryAdmin(admin.ModelAdmin):
    """Read-only, newest first, no COUNT(*), no facet counts, no bulk actions."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    list_select_related = ["camera"]
    list_filter = [CameraIdFilter, TimeWindowFilter]
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # PostgreSQL stores timestamps from 4713 BC to 294276 AD; Python loads years 1 to 9999. A row beyond
        # (refused at ingest today, but possibly stored earlier or by hand) would make every page that lists
        # it fail: it is left out here, and the DEFAULT-partition sweep reports it.
        return super().get_queryset(request).filter(timestamp__gt=LOADABLE_FROM, timestamp__lt=LOADABLE_UNTIL)

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # With a camera chosen, (camera_id, timestamp) serves the order; without one, only the
        # (id, timestamp) primary key does: identity ids grow with ingest, so that is newest first too.
        if request.GET.get(CameraIdFilter.parameter_name):
            return ["-timestamp", "-id"]
        return ["-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # This list reads PostgreSQL only: say which ranges are cold rather than let them look empty.
        table = self.model._meta.db_table
        # No COUNT(*) on any table these pages show (tests hold them to that): the cold list is short anyway.
        cold = list(
            PartitionTier.objects.filter(table=table, tier=StorageTier.COLD)
            .order_by("range_start")
            .values_list("range_start", "range_end")
        )
        if cold:
            messages.warning(
                request,
                f"{len(cold)} cold partition(s) of {table}, {cold[0][0]:%Y-%m-%d} to {cold[-1][1]:%Y-%m-%d} "
                "(UTC), are not listed here: GET /api/v1/frames reads them; partition health lists them.",
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="camera", ordering="camera__name")
    def camera_name(self, obj: Any) -> str:
        if obj.camera_id == HOST_METRICS_CAMERA_ID:
            return "(host)"
        return obj.camera.name if obj.camera_id and obj.camera else str(obj.camera_id or "—")


@admin.register(FrameMetadataRecord)
class FrameMetadataAdmin(TelemetryAdmin):
    list_display = [
        "timestamp",
        "camera_name",
        "frame_number",
        "processing_status",
        "processing_time_ms",
        "detection_count",
        "vehicle_count",
        "person_count",
        "bicycle_count",
    ]
    list_filter = [CameraIdFilter, TimeWindowFilter, "processing_status"]
    readonly_fields = ["raw_detections"]

    @admin.display(description="detections (as received)")
    def raw_detections(self, obj: FrameMetadataRecord) -> str:
        detections = frame_detections(camera_id=obj.camera_id, timestamps=[obj.timestamp]).get(obj.timestamp, [])
        try:
            text = json.dumps(detections, indent=2)
        except RecursionError:  # attributes stored before ingest bounded the depth: say so rather than fail the page
            text = "(nested too deeply to show)"
        return format_html("<pre>{}</pre>", text)


@admin.register(DetectionRecord)
class DetectionAdmin(TelemetryAdmin):
    list_display = ["timestamp", "camera_name", "object_type", "confidence", "track_id", "bbox"]

    @admin.display(description="bbox (x1, y1, x2, y2)")
    def bbox(self, obj: DetectionRecord) -> str:
        return f"{obj.bbox_x1:g}, {obj.bbox_y1:g}, {obj.bbox_x2:g}, {obj.bbox_y2:g}"


@admin.register(SystemMetricRecord)
class SystemMetricAdmin(TelemetryAdmin):
    list_display = ["timestamp", "camera_name", "name", "value", "alert_level", "labels"]
    list_filter = [CameraIdFilter, TimeWindowFilter, "alert_level"]
