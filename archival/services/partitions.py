"""Partitions ahead (the ensure_partitions job) and the DEFAULT-partition sweep.

Creation itself is telemetry's (telemetry/services/partitions.py): it moves rows waiting in the DEFAULT
partition into a partition being created, in the same transaction, which is how PostgreSQL's "updated
partition constraint for default partition would be violated" is avoided. Retention's cut-offs are
registered with it (archival.apps), so a catch-up after downtime never creates a partition that retention
would drop at once.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg import sql

from archival.conf import archival_setting
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.locks import advisory_lock
from telemetry.partitioning import UtcTimePartition, partitioned_tables, period_shift, period_start
from telemetry.selectors.partitions import partition_ranges
from telemetry.services.partitions import (
    LOCK_NAME,
    PartitionAction,
    partition_create,
    partition_floors,
    partitions_apply,
)

__all__ = ["DefaultSweepResult", "default_partitions_sweep", "partitions_ensure"]

logger = logging.getLogger(__name__)

COUNT_LIMIT = 10_000_000  # rows in a DEFAULT partition are counted up to this, never more


def partitions_ensure(*, now: datetime | None = None) -> dict[str, int] | None:
    """Create the partitions every table should have at `now` (14 days / 6 months ahead); None when another
    partition run holds the lock."""
    items = partitions_apply(moment=now or timezone.now())
    if items is None:
        return None
    counts = {action: 0 for action in ("created", "existing", "expired", "overlapping", "moved_rows")}
    for item in items:
        key = {
            PartitionAction.CREATE: "created",
            PartitionAction.EXISTS: "existing",
            PartitionAction.EXPIRED: "expired",
            PartitionAction.OVERLAPS: "overlapping",
        }[item.action]
        counts[key] += 1
        counts["moved_rows"] += item.moved_rows
    if counts["overlapping"]:
        logger.warning("%d wanted partition(s) overlap existing ones (partition size changed?)", counts["overlapping"])
    return counts


@dataclass
class DefaultSweepResult:
    table: str
    found_rows: int = 0
    moved_rows: int = 0
    created: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # why rows could not be moved
    remaining_rows: int = 0


def _count_rows(partition: str, condition: sql.Composable | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.cursor.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) rows").format(
                sql.Identifier(partition), condition or sql.SQL("TRUE"), sql.Literal(COUNT_LIMIT)
            )
        )
        return int(cursor.cursor.fetchone()[0])


def _oldest_between(partition: str, after: datetime, before: datetime) -> datetime | None:
    # Bounded on both sides in SQL: a row dated year 0 or 10000 (PostgreSQL stores them, Python cannot load
    # them) is never read into Python, only counted.
    with connection.cursor() as cursor:
        cursor.cursor.execute(
            sql.SQL('SELECT min("timestamp") FROM {} WHERE "timestamp" >= {} AND "timestamp" < {}').format(
                sql.Identifier(partition), sql.Literal(after), sql.Literal(before)
            )
        )
        return cursor.cursor.fetchone()[0]


def _sweep_floor(table: str, size: str, now: datetime) -> datetime:
    """Rows older than this are never given a partition: older than the timestamps ingest accepts (so they
    came from a bug or by hand, e.g. frames dated 1970) or than what retention keeps."""
    accepted = period_start(now - timedelta(days=settings.TELEMETRY_ACCEPT_PAST_DAYS), size)
    retained = partition_floors(moment=now).get(table)
    return max(accepted, retained) if retained is not None else accepted


def default_partitions_sweep(*, now: datetime | None = None) -> list[DefaultSweepResult] | None:
    """Find rows in each table's DEFAULT partition, create the partitions they belong to (which moves them),
    and raise a `partition_default_rows` alert saying what was found and what is left. Rows dated beyond the
    partitions-ahead window (a camera clock far in the future) or in a range another partition size covers
    are left and reported. Creates at most ARCHIVE_SWEEP_MAX_PARTITIONS partitions per run. None when
    partition maintenance is running elsewhere."""
    now = now or timezone.now()
    budget = archival_setting("ARCHIVE_SWEEP_MAX_PARTITIONS")
    results = []
    with advisory_lock(LOCK_NAME) as acquired:
        if not acquired:
            return None
        for table in partitioned_tables():
            default = next((r.name for r in partition_ranges(table.table) if r.is_default), None)
            result = DefaultSweepResult(table=table.table)
            results.append(result)
            if default is None:
                continue
            result.found_rows = _count_rows(default)
            if not result.found_rows:
                alert_resolve(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject=table.table)
                continue
            size = table.strategy.size
            horizon = period_shift(period_start(now, size), size, table.strategy.ahead + 1)
            floor = _sweep_floor(table.table, size, now)
            after = floor
            while budget > 0 and (oldest := _oldest_between(default, after, horizon)) is not None:
                partition = UtcTimePartition(start=period_start(oldest, size), size=size)
                after = partition.end
                name = f"{table.table}_{partition.name()}"
                clashes = [r.name for r in partition_ranges(table.table) if r.overlaps(partition.start, partition.end)]
                if clashes:
                    result.left.append(f"{name} overlaps {', '.join(clashes)} (partition size changed?)")
                    continue
                result.moved_rows += partition_create(table=table, partition=partition)
                result.created.append(name)
                budget -= 1
            older = _count_rows(default, sql.SQL('"timestamp" < {}').format(sql.Literal(floor)))
            if older:
                result.left.append(
                    f"{older} row(s) dated before {floor:%Y-%m-%d} UTC, older than ingest accepts or retention keeps: "
                    "no partition is created for them; delete them or move them by hand"
                )
            beyond = _count_rows(default, sql.SQL('"timestamp" >= {}').format(sql.Literal(horizon)))
            if beyond:
                result.left.append(f"{beyond} row(s) dated beyond the partitions-ahead window ({horizon:%Y-%m-%d} UTC)")
            result.remaining_rows = _count_rows(default)
            if result.remaining_rows > older + beyond and budget <= 0:
                result.left.append("more partitions to create than one run creates: the next run continues")
            message = (
                f"{result.found_rows} row(s) found in {default}: moved {result.moved_rows} into "
                f"{len(result.created)} new partition(s); {result.remaining_rows} left"
            )
            alert_raise(
                kind=AlertKind.PARTITION_DEFAULT_ROWS,
                subject=table.table,
                severity=AlertSeverity.WARNING if result.remaining_rows else AlertSeverity.INFO,
                message=message + (f" ({'; '.join(result.left)})" if result.left else ""),
                details={
                    "found": result.found_rows,
                    "moved": result.moved_rows,
                    "created": result.created,
                    "remaining": result.remaining_rows,
                    "left": result.left,
                },
            )
            logger.warning("%s", message)
    return results
