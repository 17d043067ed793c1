"""Operators' admin for retention: policies (editable, with a dry-run preview), archive runs (read-only, with
a restore action), job runs, and the partition health page. Beat schedules are django-celery-beat's admin."""

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Case, OuterRef, QuerySet, Subquery, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export import resources
from import_export.admin import ExportMixin

from archival import operations_panels  # noqa: F401 - registers the admin home's storage panel
from archival.choices import ArchiveAction
from archival.conf import archival_setting
from archival.models import ArchiveRun, PartitionHealth, RetentionPolicy
from archival.selectors.health import partition_health_report
from archival.selectors.retention import retention_plan, table_sizes
from archival.services.restores import RestoreRefused, archive_restores_queue
from archival.targets import is_partitioned
from telemetry.selectors.cold import REPEAT_KEYS, ColdDataUnavailable, NotLateRowsOfAColdRange, late_rows_repeating_cold
from telemetry.services.tiering import late_rows_repeating_cold_delete

LATE_DUPLICATES_SHOWN = 50  # keys listed per partition on the confirmation page


@dataclass(frozen=True)
class LateDuplicates:
    """A partition's late rows repeating cold rows, as the confirmation page lists them."""

    partition: str
    key: str
    keys: list[tuple[Any, ...]]

    @property
    def shown(self) -> list[tuple[Any, ...]]:
        return self.keys[:LATE_DUPLICATES_SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.keys) - LATE_DUPLICATES_SHOWN)


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    number = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if number < 1024 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return str(value)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "table", "keep", "method", "enabled", "size_against_cap", "last_run"]
    list_editable = ["enabled"]
    list_filter = ["enabled", "method"]
    search_fields = ["name", "table"]
    readonly_fields = ["created_at", "updated_at"]
    fields = [
        "name",
        "table",
        "keep_for",
        "keep_unit",
        "method",
        "enabled",
        "size_cap_bytes",
        "description",
        "created_at",
        "updated_at",
    ]
    actions = ["preview"]
    change_form_template = "admin/archival/retentionpolicy/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<int:policy_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="archival_retentionpolicy_preview",
        )
        return [preview, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RetentionPolicy]:
        # One catalog query for every table's size and one subquery for the latest run: no per-row queries.
        sizes = table_sizes()
        latest = ArchiveRun.objects.filter(policy=OuterRef("pk")).order_by("-started_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                current_bytes=Case(
                    *[When(table=table, then=Value(size)) for table, size in sizes.items()],
                    default=Value(None),
                    output_field=BigIntegerField(),
                ),
                last_run_at=Subquery(latest.values("started_at")[:1]),
                last_run_state=Subquery(latest.values("state")[:1]),
            )
        )

    @admin.display(description="keep for", ordering="keep_for")
    def keep(self, obj: RetentionPolicy) -> str:
        return obj.keep_for_display

    @admin.display(description="size / cap")
    def size_against_cap(self, obj: RetentionPolicy) -> str:
        if not is_partitioned(obj.table):
            return "—"
        size = getattr(obj, "current_bytes", None)
        if not obj.size_cap_bytes:
            return f"{_size(size)} (no cap)"
        ratio = (size or 0) / obj.size_cap_bytes
        colour = "#c62828" if ratio >= 1 else "#f9a825" if ratio >= 0.8 else "#2e7d32"
        return format_html(
            '<span style="color:{}">{} of {} ({}%)</span>',
            colour,
            _size(size),
            _size(obj.size_cap_bytes),
            f"{ratio * 100:.0f}",
        )

    @admin.display(description="last run")
    def last_run(self, obj: RetentionPolicy) -> str:
        started = getattr(obj, "last_run_at", None)
        if started is None:
            return "—"
        return f"{started:%Y-%m-%d %H:%M} {getattr(obj, 'last_run_state', '')}"

    def _plan_page(self, request: HttpRequest, policies: list[RetentionPolicy]) -> TemplateResponse:
        now = timezone.now()
        limit = archival_setting("ARCHIVE_MAX_PARTITIONS_PER_RUN")
        plans = retention_plan(now=now, policies=policies, limit=limit)
        context = {
            **self.admin_site.each_context(request),
            "title": "Retention preview (dry run)",
            "opts": self.model._meta,
            "plans": plans,
            "now": now,
            "limit": limit,
            "size": _size,
        }
        return TemplateResponse(request, "admin/archival/retention_preview.html", context)

    def preview_view(self, request: HttpRequest, policy_id: int) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        policy = get_object_or_404(RetentionPolicy, pk=policy_id)
        return self._plan_page(request, [policy])

    @admin.action(description="Preview the next run of selected policies (dry run)")
    def preview(self, request: HttpRequest, queryset: QuerySet[RetentionPolicy]) -> TemplateResponse:
        return self._plan_page(request, list(queryset))


class ArchiveRunResource(resources.ModelResource):
    """Archive runs for export (the Export button on the filtered list): what went where, with checksums."""

    class Meta:
        model = ArchiveRun
        fields = (
            "id", "action", "reason", "state", "policy_name", "table", "partition", "range_start", "range_end",
            "rows", "bytes", "checksum", "content_checksum", "location", "manifest_location", "restored_from",
            "requested_by", "started_at", "finished_at", "duration_ms", "error",
        )  # fmt: skip
        export_order = fields


@admin.register(ArchiveRun)
class ArchiveRunAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [ArchiveRunResource]
    list_display = [
        "id",
        "started_at",
        "action",
        "table",
        "partition",
        "state",
        "rows",
        "file_size",
        "duration",
        "policy_name",
        "reason",
    ]
    list_filter = ["state", "action", "table", "reason", "policy_name"]
    search_fields = ["partition", "location", "error"]
    date_hierarchy = "started_at"
    list_select_related = ["policy"]
    actions = ["restore", "late_duplicates"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="bytes", ordering="bytes")
    def file_size(self, obj: ArchiveRun) -> str:
        return _size(obj.bytes)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: ArchiveRun) -> str:
        return "—" if obj.duration_ms is None else f"{obj.duration_ms / 1000:.1f} s"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Read-only admin: actions are offered to whoever may view, the restore itself checks more below.
        actions = super().get_actions(request)
        if not request.user.has_perm("archival.view_archiverun"):
            actions.pop("restore", None)
            actions.pop("late_duplicates", None)
        return actions

    @admin.action(description="Restore selected archives (re-create the partition, load the rows back)")
    def restore(self, request: HttpRequest, queryset: QuerySet[ArchiveRun]) -> None:
        if not request.user.is_superuser:
            self.message_user(request, "Only a superuser can restore archives.", messages.ERROR)
            return
        try:
            queued = archive_restores_queue(runs=queryset, requested_by=getattr(request.user, "username", ""))
        except RestoreRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return
        self.message_user(
            request, f"Queued {len(queued)} restore(s); follow them in this list (action “restore”).", messages.SUCCESS
        )

    @admin.action(description="Delete late rows repeating cold rows (tier runs that refused to merge)")
    def late_duplicates(self, request: HttpRequest, queryset: QuerySet[ArchiveRun]) -> TemplateResponse | None:
        """A tier run fails when late rows of a cold range repeat rows its file holds: this lists them per
        partition and, once confirmed, deletes them (the rows stored first stay), so the next run merges the rest."""
        if not request.user.is_superuser:
            self.message_user(request, "Only a superuser can delete late rows.", messages.ERROR)
            return None
        partitions = sorted(set(queryset.filter(action=ArchiveAction.TIER).values_list("partition", flat=True)))
        if not partitions:
            self.message_user(request, "Select tier runs: only they merge late rows.", messages.WARNING)
            return None
        confirmed = request.POST.get("confirm") == "delete"
        found = []
        for partition in partitions:
            try:
                if confirmed:
                    table, keys = late_rows_repeating_cold_delete(partition=partition)
                else:
                    table, keys = late_rows_repeating_cold(partition=partition)
            except (NotLateRowsOfAColdRange, ColdDataUnavailable) as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            found.append(LateDuplicates(partition=partition, key=", ".join(REPEAT_KEYS[table]), keys=keys))
        if confirmed:
            for item in found:
                self.message_user(
                    request,
                    f"Deleted the late rows of {len(item.keys)} repeated key(s) from {item.partition}; "
                    "the next tiering run merges the rest.",
                    messages.SUCCESS,
                )
            return None
        if not any(item.keys for item in found):
            self.message_user(request, "No late row of the selected runs' partitions repeats a cold row.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Late rows repeating cold rows",
            "opts": self.model._meta,
            "found": found,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/archival/late_duplicates.html", context)


@admin.register(PartitionHealth)
class PartitionHealthAdmin(admin.ModelAdmin):
    """Not a list of rows: the changelist is the partition health page (catalog queries only)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        report = partition_health_report(now=now)
        tables = [
            {
                "report": table,
                "health": table.health,
                "cutoff": table.retention_cutoff,
                "partitions": [
                    {"detail": d, "size": _size(d.total_bytes), "held": d.hold_until and d.hold_until > now}
                    for d in table.health.partitions
                ],
                "total_size": _size(table.health.total_bytes),
                "cap_size": _size(table.size_cap_bytes),
            }
            for table in report.tables
        ]
        tiers = [
            {
                "table": t,
                "total_size": _size(t.total_bytes),
                "cap_size": _size(t.size_cap_bytes),
                "rate": _size(int(t.ingest_bytes_per_day)) if t.ingest_bytes_per_day else None,
                "rows": [{"summary": summary, "size": _size(summary.bytes)} for summary in t.tiers],
                "partitions": [{"p": p, "size": _size(p.bytes)} for p in t.partitions],
            }
            for t in (table.tiers for table in report.tables)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Partition health",
            "tiers": tiers,
            "bytes_per_frame": report.bytes_per_frame,
            "opts": self.model._meta,
            "tables": tables,
            "now": now,
            "archive_runs_url": reverse("admin:archival_archiverun_changelist"),
            "policies_url": reverse("admin:archival_retentionpolicy_changelist"),
            "schedules_url": reverse("admin:django_celery_beat_periodictask_changelist") + "?q=archival",
        }
        return TemplateResponse(request, "admin/archival/partition_health.html", context)
