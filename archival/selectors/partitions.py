"""Partition health from PostgreSQL's catalog only: no COUNT(*), no scan of a partition's rows (except
`EXISTS` on the DEFAULT partition, which stops at its first row)."""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction
from psycopg import sql

from its_camera.db.citus import total_relation_size_sql
from telemetry.partitioning import PartitionedTable, partitioned_tables, period_shift, period_start

__all__ = [
    "PartitionDetail",
    "TableHealth",
    "partition_details",
    "partitions_missing",
    "restore_hold_until",
    "table_health",
    "tables_health",
]

_BOUND = re.compile(r"FOR VALUES FROM \('(?P<start>[^']*)'\) TO \('(?P<end>[^']*)'\)")
_HOLD = re.compile(r"retention keeps it until (?P<until>\S+)")
MAX_PARTITIONS_LISTED = 400


@dataclass(frozen=True)
class PartitionDetail:
    name: str
    start: datetime | None  # None: the DEFAULT partition (or MINVALUE/MAXVALUE)
    end: datetime | None
    is_default: bool
    total_bytes: int
    estimated_rows: int | None  # None: never analyzed
    last_analyze: datetime | None
    comment: str

    @property
    def hold_until(self) -> datetime | None:
        return restore_hold_until(self.comment)


@dataclass
class TableHealth:
    table: str
    size: str
    partitions: list[PartitionDetail]
    total_bytes: int
    default_partition: str | None
    default_has_rows: bool
    default_estimated_rows: int | None
    current_start: datetime
    covered_until: datetime | None  # end of the contiguous run of partitions from the current period
    periods_ahead: int  # whole periods after the current one that have a partition
    wanted_ahead: int
    next_missing: datetime  # start of the first period from the current one without a partition
    current_missing: bool
    next_missing_soon: bool  # the period after the current one is missing
    notes: list[str] = field(default_factory=list)


def restore_hold_until(comment: str) -> datetime | None:
    match = _HOLD.search(comment or "")
    if match is None:
        return None
    try:
        return datetime.fromisoformat(match["until"])
    except ValueError:
        return None


def partition_details(table: str) -> list[PartitionDetail]:
    """The partitions of `table` with their size and planner statistics, oldest first, DEFAULT last."""
    query = sql.SQL(
        """
        SELECT child.relname,
               pg_get_expr(child.relpartbound, child.oid),
               {size},
               child.reltuples::bigint,
               greatest(stat.last_analyze, stat.last_autoanalyze),
               coalesce(obj_description(child.oid, 'pg_class'), '')
        FROM pg_inherits
        JOIN pg_class child ON child.oid = pg_inherits.inhrelid
        LEFT JOIN pg_stat_user_tables stat ON stat.relid = child.oid
        WHERE pg_inherits.inhparent = {}::regclass
        ORDER BY child.relname
        LIMIT {}
        """
    ).format(sql.Literal(table), sql.Literal(MAX_PARTITIONS_LISTED), size=sql.SQL(total_relation_size_sql("child.oid")))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('TimeZone', 'UTC', true)")
        cursor.cursor.execute(query)
        rows = cursor.cursor.fetchall()
    details = []
    for name, bound, total_bytes, reltuples, analyzed, comment in rows:
        match = _BOUND.match(bound)
        start = datetime.fromisoformat(match["start"]) if match else None
        end = datetime.fromisoformat(match["end"]) if match else None
        details.append(
            PartitionDetail(
                name=name,
                start=start,
                end=end,
                is_default=bound == "DEFAULT",
                total_bytes=int(total_bytes),
                estimated_rows=None if reltuples < 0 else int(reltuples),
                last_analyze=analyzed,
                comment=comment,
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(details, key=lambda d: (d.is_default, d.start or epoch))


def _default_has_rows(partition: str) -> bool:
    with connection.cursor() as cursor:
        cursor.cursor.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(partition)))
        return bool(cursor.cursor.fetchone()[0])


def table_health(table: PartitionedTable, *, now: datetime) -> TableHealth:
    size = table.strategy.size
    details = partition_details(table.table)
    ranged = [d for d in details if not d.is_default and d.start is not None and d.end is not None]
    default = next((d for d in details if d.is_default), None)
    current = period_start(now, size)
    starts = {d.start: d for d in ranged}
    cursor_start = current
    periods = 0
    while cursor_start in starts:
        cursor_start = starts[cursor_start].end  # type: ignore[assignment]
        periods += 1
        if periods > MAX_PARTITIONS_LISTED:
            break
    covered_until = cursor_start if periods else None
    notes = []
    if len(details) >= MAX_PARTITIONS_LISTED:
        notes.append(f"Only the first {MAX_PARTITIONS_LISTED} partitions are listed.")
    return TableHealth(
        table=table.table,
        size=size,
        partitions=details,
        total_bytes=sum(d.total_bytes for d in details),
        default_partition=default.name if default else None,
        default_has_rows=_default_has_rows(default.name) if default else False,
        default_estimated_rows=default.estimated_rows if default else None,
        current_start=current,
        covered_until=covered_until,
        periods_ahead=max(periods - 1, 0),
        wanted_ahead=table.strategy.ahead,
        next_missing=cursor_start,
        current_missing=periods == 0,
        next_missing_soon=periods < 2 and cursor_start <= period_shift(current, size, 1),
        notes=notes,
    )


def tables_health(*, now: datetime) -> list[TableHealth]:
    return [table_health(table, now=now) for table in partitioned_tables()]


def partitions_missing(*, now: datetime) -> list[str]:
    """Tables whose current or next partition is missing, for the readiness check."""
    missing = []
    for health in tables_health(now=now):
        if health.current_missing or health.next_missing_soon:
            missing.append(f"{health.table} from {health.next_missing:%Y-%m-%d}")
    return missing
