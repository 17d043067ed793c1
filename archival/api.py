"""Read-only archival endpoints: archive runs, partition health, retention policies and their dry-run plan.
Retention itself runs from beat, the admin or `manage.py archive`, never from an HTTP request."""

from datetime import datetime
from typing import Any

from django.db.models import BigIntegerField, Case, Value, When
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import paginate

from archival.choices import ArchiveAction, ArchiveState
from archival.conf import archival_setting
from archival.models import ArchiveRun, RetentionPolicy
from archival.selectors.health import TableHealthReport, partition_health_report
from archival.selectors.retention import retention_plan, table_sizes
from archival.targets import RetentionTable
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.pagination import CursorPage
from its_camera.choices import ApiScope
from telemetry.selectors.cold import REPEAT_KEYS, NotLateRowsOfAColdRange, late_rows_repeating_cold

router = Router(tags=["archival"])
read_auth = ApiKeyAuth(ApiScope.TELEMETRY_READ)


class ArchiveRunOut(Schema):
    id: int
    action: str
    reason: str
    state: str
    policy: str
    table: str
    partition: str
    range_start: datetime | None
    range_end: datetime | None
    rows: int | None
    bytes: int | None
    checksum: str
    content_checksum: str
    location: str
    manifest_location: str
    restored_from: int | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    error: str

    @staticmethod
    def resolve_policy(obj: ArchiveRun) -> str:
        return obj.policy_name

    @staticmethod
    def resolve_restored_from(obj: ArchiveRun) -> int | None:
        return obj.restored_from_id


class ArchiveRunFilters(Schema):
    table: RetentionTable | None = None
    state: ArchiveState | None = None
    action: ArchiveAction | None = None
    policy: str | None = None
    partition: str | None = None


@router.get(
    "/archive-runs",
    auth=read_auth,
    response=list[ArchiveRunOut],
    summary="Archive runs (exports, drops, deletes, restores), newest first",
)
@paginate(CursorPage, ordering=("-started_at", "-id"))
def archive_run_list(request: HttpRequest, filters: Query[ArchiveRunFilters]) -> Any:
    runs = ArchiveRun.objects.all()
    if filters.table:
        runs = runs.filter(table=filters.table.value)
    if filters.state:
        runs = runs.filter(state=filters.state.value)
    if filters.action:
        runs = runs.filter(action=filters.action.value)
    if filters.policy:
        runs = runs.filter(policy_name=filters.policy)
    if filters.partition:
        runs = runs.filter(partition=filters.partition)
    return runs


@router.get("/archive-runs/{run_id}", auth=read_auth, response=ArchiveRunOut, summary="One archive run")
def archive_run_detail(request: HttpRequest, run_id: int) -> ArchiveRun:
    return get_object_or_404(ArchiveRun, pk=run_id)


class PartitionOut(Schema):
    name: str
    start: datetime | None
    end: datetime | None
    is_default: bool
    total_bytes: int
    estimated_rows: int | None
    last_analyze: datetime | None
    restore_hold_until: datetime | None


class TierOut(Schema):
    tier: str
    partitions: int
    bytes: int
    rows: int = Field(description="Exact for cold files, the planner's estimate in PostgreSQL.")
    bytes_per_row: float | None
    ratio_to_hot: float | None = Field(description="Bytes per row in this tier over bytes per row in the hot tier.")


class TierPartitionOut(Schema):
    name: str
    tier: str
    start: datetime | None
    end: datetime | None
    bytes: int
    rows: int | None
    bytes_per_row: float | None
    ratio_to_hot: float | None = Field(description="Its size now over its size just before it was sealed.")


class TableHealthOut(Schema):
    table: str
    partition_size: str
    partition_count: int
    total_bytes: int
    size_cap_bytes: int | None
    default_partition_has_rows: bool
    default_partition_estimated_rows: int | None
    current_partition_missing: bool
    covered_until: datetime | None
    periods_ahead: int
    wanted_ahead: int
    next_missing: datetime
    retention_cutoff: datetime | None
    cold_after_days: int | None
    tiers: list[TierOut]
    bytes_all_tiers: int = Field(description="What the size cap counts: hot + sealed + cold.")
    ingest_bytes_per_day: float | None
    days_until_size_cap: float | None = Field(
        description="At the current ingest rate, before partitions shrink by going cold (so a lower bound)."
    )
    partitions: list[PartitionOut] | None = None
    tier_partitions: list[TierPartitionOut] | None = None


class PartitionHealthOut(Schema):
    generated_at: datetime
    ok: bool
    bytes_per_frame: dict[str, float | None] = Field(
        description="A frame with its detections, by tier: (frame bytes + detection bytes) / frames."
    )
    tables: list[TableHealthOut]


class PartitionFilters(Schema):
    table: RetentionTable | None = None
    details: bool = False


@router.get(
    "/partitions",
    auth=read_auth,
    response=PartitionHealthOut,
    summary="Partition health per telemetry table (catalog only; `details=true` lists every partition)",
)
def partition_health(request: HttpRequest, filters: Query[PartitionFilters]) -> dict[str, Any]:
    report = partition_health_report(now=timezone.now(), table=filters.table.value if filters.table else None)
    tables = [table_health_out(table, details=filters.details) for table in report.tables]
    return {
        "generated_at": report.generated_at,
        "ok": report.ok,
        "bytes_per_frame": report.bytes_per_frame,
        "tables": tables,
    }


def table_health_out(report: TableHealthReport, *, details: bool) -> dict[str, Any]:
    health, tiers = report.health, report.tiers
    return {
        "table": report.table,
        "partition_size": health.size,
        "partition_count": report.partition_count,
        "total_bytes": health.total_bytes,
        "size_cap_bytes": report.size_cap_bytes,
        "default_partition_has_rows": health.default_has_rows,
        "default_partition_estimated_rows": health.default_estimated_rows,
        "current_partition_missing": health.current_missing,
        "covered_until": health.covered_until,
        "periods_ahead": health.periods_ahead,
        "wanted_ahead": health.wanted_ahead,
        "next_missing": health.next_missing,
        "retention_cutoff": report.retention_cutoff,
        "cold_after_days": tiers.cold_after_days,
        "tiers": [tier.__dict__ for tier in tiers.tiers],
        "bytes_all_tiers": tiers.total_bytes,
        "ingest_bytes_per_day": tiers.ingest_bytes_per_day,
        "days_until_size_cap": tiers.days_until_size_cap,
        "partitions": [{**d.__dict__, "restore_hold_until": d.hold_until} for d in health.partitions]
        if details
        else None,
        "tier_partitions": [
            {**p.__dict__, "bytes_per_row": p.bytes_per_row, "ratio_to_hot": p.ratio_to_hot} for p in tiers.partitions
        ]
        if details
        else None,
    }


class RetentionPolicyOut(Schema):
    id: int
    name: str
    table: str
    keep_for: int
    keep_unit: str
    method: str
    enabled: bool
    size_cap_bytes: int | None
    table_bytes: int | None
    cutoff: datetime

    @staticmethod
    def resolve_cutoff(obj: RetentionPolicy) -> datetime:
        return obj.cutoff(timezone.now())


class PlannedActionOut(Schema):
    action: str
    reason: str
    partition: str
    start: datetime | None
    end: datetime | None
    estimated_rows: int | None
    total_bytes: int | None
    beyond_this_run: bool


class RetentionPlanOut(Schema):
    policy: str
    table: str
    cutoff: datetime
    table_bytes: int | None
    size_cap_bytes: int | None
    actions: list[PlannedActionOut]


@router.get("/retention-policies", auth=read_auth, response=list[RetentionPolicyOut], summary="Retention policies")
@paginate(CursorPage, ordering=("id",))
def retention_policy_list(request: HttpRequest) -> Any:
    sizes = table_sizes()
    return RetentionPolicy.objects.annotate(
        table_bytes=Case(
            *[When(table=table, then=Value(size)) for table, size in sizes.items()],
            default=Value(None),
            output_field=BigIntegerField(),
        )
    )


@router.get(
    "/retention-policies/{name}/plan",
    auth=read_auth,
    response=RetentionPlanOut,
    summary="What the next retention run would do for this policy (dry run: nothing changes)",
)
def retention_policy_plan(request: HttpRequest, name: str) -> dict[str, Any]:
    policy = get_object_or_404(RetentionPolicy, name=name)
    plan = retention_plan(
        now=timezone.now(), policies=[policy], limit=archival_setting("ARCHIVE_MAX_PARTITIONS_PER_RUN")
    )[0]
    return {
        "policy": policy.name,
        "table": policy.table,
        "cutoff": plan.cutoff,
        "table_bytes": plan.table_bytes,
        "size_cap_bytes": policy.size_cap_bytes,
        "actions": [item.__dict__ for item in plan.actions],
    }


class LateDuplicatesOut(Schema):
    partition: str
    table: str
    key: list[str] = Field(description="The columns by which a late row repeats a cold row.")
    count: int
    keys: list[list[Any]] = Field(
        description="The repeated keys (timestamps as UTC without offset, labels as JSON text), oldest first."
    )


@router.get(
    "/partitions/{partition}/late-duplicates",
    auth=read_auth,
    response=LateDuplicatesOut,
    summary="Late rows of a cold range that repeat rows of its cold file (what makes its tiering merge fail)",
)
def partition_late_duplicates(request: HttpRequest, partition: str) -> dict[str, Any]:
    if len(partition) > 128:
        raise HttpError(422, "A partition name is at most 128 characters")
    try:
        table, keys = late_rows_repeating_cold(partition=partition)
    except NotLateRowsOfAColdRange as exc:
        raise HttpError(404, str(exc)) from exc
    return {
        "partition": partition,
        "table": table,
        "key": list(REPEAT_KEYS.get(table, ())),
        "count": len(keys),
        "keys": [list(key) for key in keys],
    }
