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
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet
from django.core.paginator import EmptyPage, InvalidPage, Page, PageNotAnInteger, Paginator
from django.db import DatabaseError, connections
from django.db.models import Model, QuerySet, prefetch_related_objects
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

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
from telemetry.selectors.cold import ColdDataUnavailable
from telemetry.selectors.timeline import (
    EARLIEST,
    LATEST,
    ColdFilter,
    cold_row_by_id,
    cold_row_count,
    frame_detections,
    rows_across_tiers,
)


def planner_estimate(queryset: QuerySet) -> int:
    """PostgreSQL's estimate of the rows `queryset` returns (EXPLAIN, nothing counted); 0 when it has none."""
    try:
        connection = connections[queryset.db]
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])
    except (EmptyResultSet, DatabaseError, KeyError, IndexError, TypeError, ValueError):
        return 0


MAX_TIERED_ROWS = 10_000  # rows a list spanning cold files pages through (TieredChangeList)


class TieredRows:
    """A changelist's rows across storage tiers: its filtered queryset (hot and sealed partitions) and the cold
    files of the chosen range, read through the timeline selector, newest first by (timestamp, id). Sliced by the
    paginator like a queryset; each slice is model instances, so list_display and the change links work as usual."""

    def __init__(self, *, queryset: QuerySet, cold: ColdFilter) -> None:
        self.queryset = queryset
        self.cold = cold
        self.model = queryset.model
        self.fields = [field.attname for field in self.model._meta.concrete_fields]

    def __getitem__(self, window: slice) -> list[Model]:
        start, stop = window.start or 0, window.stop
        if stop is None:
            raise ValueError("Rows across tiers are read a bounded slice at a time")
        rows = rows_across_tiers(
            attached=self.queryset, cold=self.cold, fields=self.fields, descending=True, limit=stop
        )
        objects = [self.model(**dict(zip(self.fields, values, strict=True))) for values in rows[start:stop]]
        prefetch_related_objects(objects, "camera")
        return objects

    def estimated_count(self) -> int:
        return planner_estimate(self.queryset) + cold_row_count(self.cold)


class EstimatedCountPaginator(Paginator):
    """Counts nothing in PostgreSQL: the total is its estimate for the filtered query (EXPLAIN), plus the cold
    rows of the range when the list spans cold files (DuckDB), raised to what the pages read saw: the first page
    and each page's "next" link are always right, and a page past a short estimate still opens while it has rows."""

    @cached_property
    def count(self) -> int:
        rows: Any = self.object_list
        probe = len(rows[: self.per_page + 1])
        estimate = rows.estimated_count() if isinstance(rows, TieredRows) else planner_estimate(rows)
        return max(estimate, probe)

    def page(self, number: Any) -> Page:
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])  # one more: is there a next page?
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        if bottom + len(rows) > self.count:
            self.__dict__["count"] = bottom + len(rows)
            self.__dict__.pop("num_pages", None)
        return Page(rows[: self.per_page], number, self)


def parse_moment(value: str | None) -> datetime | None:
    """An operator's date or date and time (ISO 8601; without an offset: UTC), or None when it is not one."""
    try:
        moment = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment if EARLIEST < moment < LATEST else None


class InputFilter(admin.SimpleListFilter):
    """A text box rather than a list of choices: a dropdown of every camera (or instant) does not scale."""

    template = "admin/telemetry/input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("", "")]

    def refused(self, request: HttpRequest, queryset: QuerySet, expected: str) -> QuerySet:
        """A value that is not what the box asks for lists nothing, and says why (not a silently empty list)."""
        messages.error(request, f"{capfirst(self.title)}: {self.value()!r} is not {expected}.")
        return queryset.none()

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Any:
        hidden = [(k, v) for k, v in changelist.get_filters_params().items() if k != self.parameter_name]
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value(),
            "placeholder": self.placeholder,
            "hidden_params": [(k, v[-1] if isinstance(v, list) else v) for k, v in hidden],
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
        }


class CameraIdFilter(InputFilter):
    title = "camera id"
    parameter_name = "camera_id"
    placeholder = "camera UUID"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        try:
            camera_id = uuid.UUID(value.strip())
        except ValueError:
            return self.refused(request, queryset, "a camera UUID")
        return queryset.filter(camera_id=camera_id)


class SinceFilter(InputFilter):
    """From (inclusive), UTC. A range reaching cold partitions lists their rows too (TieredRows)."""

    title = "from (UTC)"
    parameter_name = "since"
    placeholder = "2026-11-10 09:00"
    lookup = "timestamp__gte"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        moment = parse_moment(value)
        if moment is None:
            return self.refused(request, queryset, "a date or date and time (ISO 8601, UTC)")
        return queryset.filter(**{self.lookup: moment})


class UntilFilter(SinceFilter):
    """Until (exclusive), UTC."""

    title = "until (UTC)"
    parameter_name = "until"
    placeholder = "2026-11-11"
    lookup = "timestamp__lt"


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


RANGE_PARAMETERS = (SinceFilter.parameter_name, UntilFilter.parameter_name, TimeWindowFilter.parameter_name)
AT_PARAMETER = "at"  # a cold row's change link carries its timestamp, so its page reads one file


class TieredChangeList(ChangeList):
    """Django's changelist, whose rows come from every storage tier when the chosen time range reaches cold
    partitions (the model admin's `cold_filter`); otherwise exactly Django's (PostgreSQL only). Such a list
    shows its first MAX_TIERED_ROWS rows: a page of rows merged by (timestamp, id) from several tiers reads every
    row before it from each (neither tier can skip to the other's offset), so a deep page would read a whole
    range; narrowing the range reaches any row in a few pages."""

    spans_cold = False

    def get_results(self, request: HttpRequest) -> None:
        cold = self.model_admin.cold_filter(request)  # type: ignore[attr-defined]
        if cold is None:
            super().get_results(request)
            return
        deepest = max(1, MAX_TIERED_ROWS // self.list_per_page)
        if self.page_num > deepest:
            messages.warning(
                request,
                f"A list whose range reaches cold files shows its first {deepest * self.list_per_page:,} rows "
                f"(page {deepest}): each page reads every row before it from every tier. Narrow the from / until "
                "range to list older rows.",
            )
            self.page_num = deepest
        rows = TieredRows(queryset=self.queryset, cold=cold)
        paginator = self.model_admin.get_paginator(request, rows, self.list_per_page)  # type: ignore[arg-type]
        try:
            result_list = paginator.page(self.page_num).object_list  # first: it may raise the estimated count
            result_count = paginator.count
        except InvalidPage as exc:
            raise IncorrectLookupParameters from exc
        except ColdDataUnavailable as exc:
            messages.error(request, f"{exc}. Their rows are not listed; `manage.py archive verify --cold` says why.")
            super().get_results(request)
            return
        self.result_count = result_count
        self.show_full_result_count = False
        self.show_admin_actions = False
        self.full_result_count = None
        self.result_list = result_list
        self.can_show_all = False  # every row of a cold range at once is what the pages are for
        self.multi_page = result_count > self.list_per_page
        self.paginator = paginator
        self.spans_cold = True

    def url_for_result(self, result: Model) -> str:
        url = super().url_for_result(result)
        if self.spans_cold:
            return f"{url}?{urlencode({AT_PARAMETER: result.timestamp.isoformat()})}"  # type: ignore[attr-defined]
        return url


class TelemetryAdmin(admin.ModelAdmin):
    """Read-only, newest first, no COUNT(*), no facet counts, no bulk actions. With a time range chosen that
    reaches cold partitions, the list reads them too: the same rows in the same order as before they went cold."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    list_select_related = ["camera"]
    list_filter = [CameraIdFilter, SinceFilter, UntilFilter, TimeWindowFilter]
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # PostgreSQL stores timestamps from 4713 BC to 294276 AD; Python loads years 1 to 9999. A row beyond
        # (refused at ingest today, but possibly stored earlier or by hand) would make every page that lists
        # it fail: it is left out here, and the DEFAULT-partition sweep reports it.
        return super().get_queryset(request).filter(timestamp__gt=EARLIEST, timestamp__lt=LATEST)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TieredChangeList

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # With a camera or a time range chosen, (timestamp, id): the order of every tier's rows (and the
        # (camera_id, timestamp) index's). Without either, newest ingested first on the primary key's ids.
        if request.GET.get(CameraIdFilter.parameter_name) or any(request.GET.get(p) for p in RANGE_PARAMETERS):
            return ["-timestamp", "-id"]
        return ["-id"]

    def get_sortable_by(self, request: HttpRequest) -> Any:
        # Rows merged from cold files come in (timestamp, id) order only.
        return () if self.cold_filter(request) is not None else super().get_sortable_by(request)

    def cold_filter(self, request: HttpRequest) -> ColdFilter | None:
        """What the chosen filters ask of the cold files, or None when the list reads PostgreSQL only: no time
        range chosen (an unfiltered list stays cheap), a filter value that is not valid (the list is empty), or
        no cold partition in the range. Worked out once a request (the page asks it three times)."""
        if not hasattr(request, "_telemetry_cold_filter"):
            request._telemetry_cold_filter = self._cold_filter(request)  # type: ignore[attr-defined]
        return request._telemetry_cold_filter  # type: ignore[attr-defined]

    def _cold_filter(self, request: HttpRequest) -> ColdFilter | None:
        parameters = request.GET
        camera_id: uuid.UUID | None = None
        if text := parameters.get(CameraIdFilter.parameter_name, "").strip():
            try:
                camera_id = uuid.UUID(text)
            except ValueError:
                return None
        bounds = []
        for name in (SinceFilter.parameter_name, UntilFilter.parameter_name):
            text = parameters.get(name, "")
            if text and parse_moment(text) is None:
                return None
            bounds.append(parse_moment(text) if text else None)
        since, until = bounds
        if (window := TimeWindowFilter.WINDOWS.get(parameters.get(TimeWindowFilter.parameter_name, ""))) is not None:
            since = max(since or EARLIEST, timezone.now() - window[1])
        if since is None and until is None:
            return None
        fields = {field.name for field in self.model._meta.concrete_fields}
        equals = tuple(
            (name.removesuffix("__exact"), value)
            for name, value in sorted(parameters.items())
            if name.endswith("__exact") and name.removesuffix("__exact") in fields
        )
        cold = ColdFilter(
            table=self.model._meta.db_table,
            since=since or EARLIEST,
            until=until or LATEST,
            camera_id=camera_id,
            equals=equals,
        )
        return cold if cold.partitions() else None

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Model | None:
        # A row of a cold range is found in its cold file (its change link says its timestamp).
        found = super().get_object(request, object_id, from_field)
        if found is not None or from_field is not None:
            return found
        try:
            row_id = int(object_id)
        except ValueError:
            return None
        fields = [field.attname for field in self.model._meta.concrete_fields]
        try:
            values = cold_row_by_id(
                model=self.model,
                table=self.model._meta.db_table,
                fields=fields,
                id=row_id,
                at=parse_moment(request.GET.get(AT_PARAMETER)),
            )
        except ColdDataUnavailable as exc:
            messages.error(request, str(exc))
            return None
        return None if values is None else self.model(**dict(zip(fields, values, strict=True)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Without a time range the list reads PostgreSQL only: say which ranges are cold, and how to list them.
        table = self.model._meta.db_table
        # No COUNT(*) on any table these pages show (tests hold them to that): the cold list is short anyway.
        cold = list(
            PartitionTier.objects.filter(table=table, tier=StorageTier.COLD)
            .order_by("range_start")
            .values_list("range_start", "range_end")
        )
        if cold and self.cold_filter(request) is None:
            messages.info(
                request,
                f"{len(cold)} cold partition(s) of {table}, {cold[0][0]:%Y-%m-%d} to {cold[-1][1]:%Y-%m-%d} "
                "(UTC), are listed once a time range reaching them is chosen (from / until).",
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
    list_filter = [CameraIdFilter, SinceFilter, UntilFilter, TimeWindowFilter, "processing_status"]
    readonly_fields = ["raw_detections", "detection_rows"]

    @admin.display(description="detection rows")
    def detection_rows(self, obj: FrameMetadataRecord) -> str:
        """A link to the detections browser for this frame alone: its camera and a one-microsecond range, which
        lists them from whichever tier holds them."""
        window = {
            CameraIdFilter.parameter_name: str(obj.camera_id),
            SinceFilter.parameter_name: obj.timestamp.isoformat(),
            UntilFilter.parameter_name: (obj.timestamp + timedelta(microseconds=1)).isoformat(),
        }
        url = f"{reverse('admin:telemetry_detectionrecord_changelist')}?{urlencode(window)}"
        return format_html('<a href="{}">{} detection(s) of this frame</a>', url, obj.detection_count)

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
    list_filter = [CameraIdFilter, SinceFilter, UntilFilter, TimeWindowFilter, "alert_level"]
