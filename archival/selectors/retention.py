"""What the next retention run would do (the dry run), and the floors partition creation respects."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from psycopg import sql

from archival.choices import ArchiveAction, ArchiveReason, RetentionMethod
from archival.models import RetentionPolicy
from archival.selectors.partitions import PartitionDetail, partition_details
from archival.targets import PLAIN_TABLES, PlainTable, is_partitioned
from its_camera.db.citus import total_relation_size_sql
from telemetry.choices import StorageTier
from telemetry.models import PartitionTier
from telemetry.partitioning import partitioned_tables, period_start

__all__ = [
    "PlannedAction",
    "PolicyPlan",
    "plain_rows_due",
    "retention_floors",
    "retention_plan",
    "table_sizes",
]

COUNT_LIMIT = 1_000_000  # a dry run counts plain-table rows up to this, never the whole table


@dataclass(frozen=True)
class PlannedAction:
    policy: str
    table: str
    action: str  # ArchiveAction
    reason: str  # ArchiveReason
    partition: str = ""
    start: datetime | None = None
    end: datetime | None = None
    estimated_rows: int | None = None
    total_bytes: int | None = None
    beyond_this_run: bool = False  # past ARCHIVE_MAX_PARTITIONS_PER_RUN: the run after next


@dataclass
class PolicyPlan:
    policy: RetentionPolicy
    cutoff: datetime
    actions: list[PlannedAction]
    table_bytes: int | None = None  # partitioned tables: current size, for the size cap
    held: list[str] | None = None  # restored partitions retention leaves alone for now

    @property
    def cap_ratio(self) -> float | None:
        if self.policy.size_cap_bytes and self.table_bytes is not None:
            return self.table_bytes / self.policy.size_cap_bytes
        return None


def table_sizes() -> dict[str, int]:
    """Total size (with indexes and TOAST) of each partitioned table, summed over its partitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT parent.relname, coalesce(sum({total_relation_size_sql("inh.inhrelid")}), 0)::bigint
            FROM pg_class parent
            LEFT JOIN pg_inherits inh ON inh.inhparent = parent.oid
            WHERE parent.relname = ANY(%s) AND parent.relkind = 'p'
            GROUP BY parent.relname
            """,  # noqa: S608 - our SQL, no input
            [[table.table for table in partitioned_tables()]],
        )
        return {name: int(size) for name, size in cursor.fetchall()}


def _cold_details(table: str) -> list[PartitionDetail]:
    """Cold partitions as retention sees them: a range and the bytes of its file (every tier counts)."""
    return [
        PartitionDetail(
            name=tier.partition,
            start=tier.range_start,
            end=tier.range_end,
            is_default=False,
            total_bytes=tier.bytes or 0,
            estimated_rows=tier.rows,
            last_analyze=None,
            comment="",
        )
        for tier in PartitionTier.objects.filter(table=table, tier=StorageTier.COLD).order_by("range_start")
    ]


def _partition_actions(
    policy: RetentionPolicy,
    details: list[PartitionDetail],
    *,
    now: datetime,
    cutoff: datetime,
    limit: int,
    cold: list[PartitionDetail] | None = None,
) -> tuple[list[PlannedAction], int, list[str]]:
    attached_action = ArchiveAction.EXPORT if policy.method == RetentionMethod.EXPORT else ArchiveAction.DROP
    cold = cold or []
    # A range can be cold and attached at once (late rows waiting to be merged): the attached part is dropped
    # with the file.
    ranged = [d for d in details if not d.is_default and d.start is not None and d.end is not None] + cold
    held = [d.name for d in ranged if d.hold_until is not None and d.hold_until > now]
    candidates = sorted((d for d in ranged if d.name not in held), key=lambda d: d.start)  # type: ignore[arg-type,return-value]
    table_bytes = sum(d.total_bytes for d in details) + sum(d.total_bytes for d in cold)
    chosen: list[tuple[PartitionDetail, str]] = [(d, ArchiveReason.EXPIRED) for d in candidates if d.end <= cutoff]  # type: ignore[operator]
    if policy.size_cap_bytes:
        # Past the cap, the oldest whole-past partitions go too (exported first, like expired ones); the
        # current partition and those ahead are never dropped for size.
        remaining = table_bytes - sum(d.total_bytes for d, _ in chosen)
        current = period_start(now, partitioned_size(policy.table))
        for detail in candidates:
            if remaining <= policy.size_cap_bytes:
                break
            if any(detail is d for d, _ in chosen) or detail.end > current:  # type: ignore[operator]
                continue
            chosen.append((detail, ArchiveReason.SIZE_CAP))
            remaining -= detail.total_bytes
    chosen.sort(key=lambda pair: pair[0].start)  # type: ignore[arg-type,return-value]
    actions = [
        PlannedAction(
            policy=policy.name,
            table=policy.table,
            action=ArchiveAction.DELETE_COLD if any(detail is d for d in cold) else attached_action,
            reason=reason,
            partition=detail.name,
            start=detail.start,
            end=detail.end,
            estimated_rows=detail.estimated_rows,
            total_bytes=detail.total_bytes,
            beyond_this_run=index >= limit,
        )
        for index, (detail, reason) in enumerate(chosen)
    ]
    return actions, table_bytes, held


def partitioned_size(table: str) -> str:
    return next(t.strategy.size for t in partitioned_tables() if t.table == table)


def plain_rows_due(target: PlainTable, *, cutoff: datetime, limit: int = COUNT_LIMIT) -> int:
    """Rows of a plain table older than the cut-off, counted up to `limit`."""
    condition = sql.SQL(target.condition) if target.condition else sql.SQL("TRUE")  # fixed text from targets.py
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} < {} AND {} LIMIT {}) due").format(
        sql.Identifier(target.table),
        sql.Identifier(target.time_column),
        sql.Literal(cutoff),
        condition,
        sql.Literal(limit),
    )
    with connection.cursor() as cursor:
        cursor.cursor.execute(query)
        return int(cursor.cursor.fetchone()[0])


def retention_plan(*, now: datetime, policies: list[RetentionPolicy] | None = None, limit: int) -> list[PolicyPlan]:
    """For each enabled policy (or the ones given), what a run at `now` would export, drop or delete.
    Reads the catalog only, plus a bounded count for plain tables."""
    if policies is None:
        policies = list(RetentionPolicy.objects.filter(enabled=True))
    plans = []
    for policy in policies:
        cutoff = policy.cutoff(now)
        if is_partitioned(policy.table):
            actions, table_bytes, held = _partition_actions(
                policy,
                partition_details(policy.table),
                now=now,
                cutoff=cutoff,
                limit=limit,
                cold=_cold_details(policy.table),
            )
            plans.append(PolicyPlan(policy=policy, cutoff=cutoff, actions=actions, table_bytes=table_bytes, held=held))
            continue
        due = plain_rows_due(PLAIN_TABLES[policy.table], cutoff=cutoff)  # type: ignore[index]
        actions = []
        if due:
            actions.append(
                PlannedAction(
                    policy=policy.name,
                    table=policy.table,
                    action=ArchiveAction.DELETE,
                    reason=ArchiveReason.EXPIRED,
                    estimated_rows=due,
                )
            )
        plans.append(PolicyPlan(policy=policy, cutoff=cutoff, actions=actions))
    return plans


def retention_floors(moment: datetime) -> Mapping[str, datetime]:
    """The cut-off of each enabled partitioned-table policy: partitions ending before it are not worth creating."""
    return {
        policy.table: policy.cutoff(moment)
        for policy in RetentionPolicy.objects.filter(enabled=True)
        if is_partitioned(policy.table)
    }
