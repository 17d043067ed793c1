"""Create the telemetry partitions the configuration asks for (`manage.py partitions apply`)."""

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from psqlextra.partitioning.constants import AUTO_PARTITIONED_COMMENT
from psycopg import sql

from its_camera.db.locks import advisory_lock
from its_camera.progress import ProgressCallback, progress_noop
from telemetry.partitioning import PartitionedTable, UtcTimePartition, partitioned_tables
from telemetry.selectors.partitions import PartitionRange, partition_ranges

__all__ = [
    "PartitionAction",
    "PartitionPlanItem",
    "partition_create",
    "partition_floors",
    "partitions_apply",
    "partitions_plan",
    "register_partition_floor",
]

logger = logging.getLogger(__name__)

LOCK_NAME = "telemetry.partitions"
# A partition is created under a brief ACCESS EXCLUSIVE lock on the DEFAULT partition; give up
# rather than queue behind a long reader (and stall every insert queued behind us).
LOCK_TIMEOUT = "5s"


class PartitionAction:
    EXISTS = "exists"
    CREATE = "create"
    OVERLAPS = "overlaps"  # another partition (e.g. from an earlier size setting) covers part of the range
    EXPIRED = "expired"  # ends before what retention keeps: it would be dropped as soon as it was created


# Retention lives in the archival app, which telemetry does not import: it registers a provider of the oldest
# moment worth keeping per table (archival.apps), so a catch-up after downtime creates nothing retention
# would drop at once.
PartitionFloorProvider = Callable[[datetime], Mapping[str, datetime]]
_floor_providers: list[PartitionFloorProvider] = []


def register_partition_floor(provider: PartitionFloorProvider) -> None:
    """Register `provider(moment) -> {table: floor}`: partitions ending at or before a floor are not created."""
    if provider not in _floor_providers:
        _floor_providers.append(provider)


def partition_floors(*, moment: datetime) -> dict[str, datetime]:
    """The oldest moment worth a partition per table at `moment`, from the registered providers (retention)."""
    return _floors(moment)


def _floors(moment: datetime) -> dict[str, datetime]:
    floors: dict[str, datetime] = {}
    for provider in _floor_providers:
        for table, floor in provider(moment).items():
            floors[table] = max(floor, floors.get(table, floor))
    return floors


@dataclass(frozen=True)
class PartitionPlanItem:
    table: str
    partition: str
    start: datetime
    end: datetime
    action: str
    detail: str = ""
    moved_rows: int = 0


def _plan_table(table: PartitionedTable, moment: datetime, floor: datetime | None = None) -> list[PartitionPlanItem]:
    existing = partition_ranges(table.table)
    by_name = {r.name: r for r in existing}
    items = []
    for partition in table.strategy.partitions_around(moment):
        full_name = f"{table.table}_{partition.name()}"
        same = by_name.get(full_name)
        if same is not None and (same.start, same.end) == (partition.start, partition.end):
            action, detail = PartitionAction.EXISTS, ""
        elif floor is not None and partition.end <= floor:
            action, detail = PartitionAction.EXPIRED, f"retention keeps rows from {floor:%Y-%m-%d %H:%M} UTC"
        else:
            overlapping = [r.name for r in existing if r.overlaps(partition.start, partition.end)]
            if overlapping:
                action, detail = PartitionAction.OVERLAPS, ", ".join(overlapping)
            else:
                action, detail = PartitionAction.CREATE, ""
        items.append(
            PartitionPlanItem(
                table=table.table,
                partition=full_name,
                start=partition.start,
                end=partition.end,
                action=action,
                detail=detail,
            )
        )
    return items


def partitions_plan(*, moment: datetime | None = None) -> list[PartitionPlanItem]:
    """What `partitions_apply` would do at `moment` (default: now): one item per wanted partition."""
    moment = moment or timezone.now()
    floors = _floors(moment)
    return [item for table in partitioned_tables() for item in _plan_table(table, moment, floors.get(table.table))]


def _default_partition(ranges: list[PartitionRange]) -> str | None:
    return next((r.name for r in ranges if r.is_default), None)


def partition_create(*, table: PartitionedTable, partition: UtcTimePartition) -> int:
    """Create one partition (moving its rows out of the DEFAULT partition); returns the rows moved. Callers
    hold the LOCK_NAME advisory lock (partitions_apply does) so two creators never race."""
    return _create_partition(table, partition)


def _create_partition(table: PartitionedTable, partition: UtcTimePartition) -> int:
    """Create one partition in one transaction; rows of its range waiting in the DEFAULT partition are
    moved into it (PostgreSQL refuses to create it while they are there). Returns the rows moved."""
    parent = sql.Identifier(table.table)
    name = sql.Identifier(f"{table.table}_{partition.name()}")
    start, end = sql.Literal(partition.start), sql.Literal(partition.end)
    moved = 0
    with transaction.atomic(), connection.cursor() as cursor:
        pg = cursor.cursor
        pg.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        pg.execute("SET LOCAL TIME ZONE 'UTC'")
        default = _default_partition(partition_ranges(table.table))
        if default is not None:
            default_table = sql.Identifier(default)
            in_range = sql.SQL('"timestamp" >= {} AND "timestamp" < {}').format(start, end)
            pg.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(default_table, in_range))
            if pg.fetchone()[0]:
                pg.execute(sql.SQL("CREATE TEMPORARY TABLE moving_rows (LIKE {}) ON COMMIT DROP").format(parent))
                pg.execute(
                    sql.SQL(
                        "WITH moved AS (DELETE FROM {} WHERE {} RETURNING *)"
                        " INSERT INTO moving_rows SELECT * FROM moved"
                    ).format(default_table, in_range)
                )
                moved = pg.rowcount
        pg.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(name, parent, start, end)
        )
        pg.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(name, sql.Literal(AUTO_PARTITIONED_COMMENT)))
        if moved:
            pg.execute(sql.SQL("INSERT INTO {} SELECT * FROM moving_rows").format(parent))
            # ON COMMIT DROP is not enough when the caller's transaction creates several partitions.
            pg.execute("DROP TABLE moving_rows")
    if moved:
        logger.warning("Moved %d rows of %s from the DEFAULT partition into %s", moved, table.table, partition.name())
    return moved


def partitions_apply(
    *, moment: datetime | None = None, progress: ProgressCallback = progress_noop
) -> list[PartitionPlanItem] | None:
    """Create every missing partition the configuration asks for at `moment` (default: now), each in its
    own short transaction. Idempotent; safe to run twice at once (the second run returns None at once).
    Returns the plan items with what was done; `progress` hears each table's partitions as they are made."""
    moment = moment or timezone.now()
    with advisory_lock(LOCK_NAME) as acquired:
        if not acquired:
            logger.info("Partition maintenance already running elsewhere; skipped")
            return None
        done = []
        floors = _floors(moment)
        for table in partitioned_tables():
            wanted = {f"{table.table}_{p.name()}": p for p in table.strategy.partitions_around(moment)}
            plan = _plan_table(table, moment, floors.get(table.table))
            to_create = sum(item.action == PartitionAction.CREATE for item in plan)
            created = 0
            progress(f"partitions {table.table}", created, to_create)
            for item in plan:
                if item.action != PartitionAction.CREATE:
                    done.append(item)
                    continue
                moved = _create_partition(table, wanted[item.partition])
                created += 1
                progress(f"partitions {table.table} (created {item.partition})", created, to_create)
                logger.debug("Created partition %s [%s, %s)", item.partition, item.start, item.end)
                done.append(dataclasses.replace(item, moved_rows=moved))
        return done
