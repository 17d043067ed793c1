"""Seal telemetry partitions: hot -> sealed (docs/storage.md).

A partition is *hot* while it can still receive rows: until its range ended TELEMETRY_LATE_ROW_GRACE_MINUTES
ago. Hot partitions carry only the parent's indexes, the ones ingest and the API's reads need. Sealing one:

1. builds the extra lookups configured for its table (TELEMETRY_SEALED_INDEXES, from SEALED_INDEXES) with
   `CREATE INDEX CONCURRENTLY` on the partition alone: readers and late writers carry on. A build that died
   half-way leaves an INVALID index, which the next run drops (CONCURRENTLY) and builds again;
2. `VACUUM (FREEZE, ANALYZE)` the partition: fresh planner statistics, every page all-visible (index-only
   scans) and frozen (no anti-wraparound rewrite of a closed day later); it takes no lock readers or writers
   wait for;
3. records it as sealed (PartitionTier), with its size before and after.

Rows that still arrive for a sealed range land in the sealed partition (it stays attached, with its indexes);
rows for a cold range land in the DEFAULT partition, the sweep gives them a partition of their own, and the
cold tiering merges that partition into the range's Parquet file (archival.services.tiering).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql

from its_camera.db.citus import total_relation_size_sql
from telemetry.choices import StorageTier
from telemetry.models import PartitionTier
from telemetry.partitioning import partitioned_tables
from telemetry.selectors.cold import REPEAT_KEYS, NotLateRowsOfAColdRange, late_rows_repeating_cold, late_rows_table
from telemetry.selectors.partitions import PartitionRange, partition_ranges

__all__ = [
    "SEALED_INDEXES",
    "SealResult",
    "late_row_grace",
    "late_rows_repeating_cold_delete",
    "partition_seal",
    "partition_tier_cold",
    "partition_tier_forget",
    "partition_tier_verified",
    "partitions_due_for_sealing",
    "partitions_seal",
]

logger = logging.getLogger(__name__)

# Lookups a sealed partition can carry on top of the parent's indexes, by table and name (the name is what
# TELEMETRY_SEALED_INDEXES lists). The seed's detection lookups live here: measured in bench/storage.py, they
# were 2/3 of a detection row's bytes, and no API query uses them.
SEALED_INDEXES: dict[str, dict[str, sql.Composable]] = {
    "detections": {
        "type_confidence": sql.SQL("(object_type, confidence)"),
        "bbox_gist": sql.SQL("USING gist (box(point(bbox_x1, bbox_y1), point(bbox_x2, bbox_y2)))"),
        "track": sql.SQL("(camera_id, track_id, timestamp) WHERE track_id IS NOT NULL"),
    },
    "frame_metadata": {},
    "system_metrics": {},
}


def late_row_grace() -> timedelta:
    return timedelta(minutes=settings.TELEMETRY_LATE_ROW_GRACE_MINUTES)


@dataclass(frozen=True)
class SealResult:
    table: str
    partition: str
    indexes: list[str]
    hot_bytes: int
    sealed_bytes: int


def _relation_size(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {total_relation_size_sql('relation.oid')} FROM (SELECT %s::regclass::oid AS oid) AS relation",  # noqa: S608
            [name],
        )
        return int(cursor.fetchone()[0])


def _index_name(partition: str, index: str) -> str:
    return f"{partition}_{index}"[:63]


def _index_state(name: str) -> bool | None:
    """True: a valid index by that name exists; False: an invalid one (a build that died); None: none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
            "WHERE pg_class.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _build_index(table: str, partition: str, index: str) -> str:
    definitions = SEALED_INDEXES.get(table, {})
    if index not in definitions:
        raise ValueError(f"{index!r} is not a sealed index of {table} (known: {', '.join(definitions) or 'none'})")
    name = _index_name(partition, index)
    state = _index_state(name)
    with connection.cursor() as cursor:
        if state is False:
            cursor.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
        if state is not True:
            cursor.execute(
                sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} {}").format(
                    sql.Identifier(name), sql.Identifier(partition), definitions[index]
                )
            )
    return name


def partition_seal(*, table: str, partition: str, start: datetime, end: datetime, now: datetime) -> SealResult:
    """Seal one partition (see the module docstring). Runs outside any transaction: CREATE INDEX CONCURRENTLY
    and VACUUM refuse to run inside one. Idempotent: an interrupted seal is finished by the next call."""
    if connection.in_atomic_block:
        raise RuntimeError("partition_seal runs outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM)")
    hot_bytes = _relation_size(partition)
    built = [_build_index(table, partition, index) for index in settings.TELEMETRY_SEALED_INDEXES.get(table, [])]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(sql.Identifier(partition)))
    sealed_bytes = _relation_size(partition)
    PartitionTier.objects.update_or_create(
        partition=partition,
        defaults={
            "table": table,
            "range_start": start,
            "range_end": end,
            "tier": StorageTier.SEALED,
            "sealed_at": now,
            "sealed_indexes": built,
            "hot_bytes": hot_bytes,
            "sealed_bytes": sealed_bytes,
        },
    )
    logger.info("Sealed %s (%d -> %d bytes, indexes %s)", partition, hot_bytes, sealed_bytes, built or "none")
    return SealResult(table=table, partition=partition, indexes=built, hot_bytes=hot_bytes, sealed_bytes=sealed_bytes)


def partitions_due_for_sealing(*, now: datetime) -> list[tuple[str, PartitionRange]]:
    """Attached partitions whose range plus the late-row grace has passed and that are not sealed yet,
    oldest first."""
    known = set(PartitionTier.objects.values_list("partition", flat=True))
    cutoff = now - late_row_grace()
    due = []
    for table in partitioned_tables():
        for partition in partition_ranges(table.table):
            if partition.is_default or partition.end is None or partition.name in known:
                continue
            if partition.end <= cutoff:
                due.append((table.table, partition))
    return sorted(due, key=lambda item: item[1].end or now)


def partitions_seal(*, now: datetime | None = None, limit: int | None = None) -> list[SealResult]:
    """Seal up to `limit` (TELEMETRY_SEAL_MAX_PARTITIONS_PER_RUN) partitions that are due, oldest first.
    The job body of `archival.tasks.seal_partitions` (which holds its lock and records the run)."""
    now = now or timezone.now()
    limit = settings.TELEMETRY_SEAL_MAX_PARTITIONS_PER_RUN if limit is None else limit
    results = []
    for table, partition in partitions_due_for_sealing(now=now)[:limit]:
        assert partition.start is not None
        assert partition.end is not None
        results.append(
            partition_seal(table=table, partition=partition.name, start=partition.start, end=partition.end, now=now)
        )
    return results


def partition_tier_cold(
    *,
    table: str,
    partition: str,
    start: datetime,
    end: datetime,
    now: datetime,
    rows: int,
    location: str,
    size: int,
    checksum: str,
    content_checksum: str,
) -> PartitionTier:
    """Record that `partition`'s rows now live in the cold file at `location`. Called by the cold tiering in
    the transaction that drops the partition, so the rows are in exactly one tier whatever happens."""
    tier, _ = PartitionTier.objects.update_or_create(
        partition=partition,
        defaults={
            "table": table,
            "range_start": start,
            "range_end": end,
            "tier": StorageTier.COLD,
            "cold_at": now,
            "rows": rows,
            "location": location,
            "bytes": size,
            "checksum": checksum,
            "content_checksum": content_checksum,
            "verified_at": now,
            "verify_error": "",
        },
    )
    return tier


def partition_tier_verified(*, partition: str, now: datetime, error: str = "") -> int:
    """Record the outcome of re-verifying a cold file (empty `error`: it matched)."""
    return PartitionTier.objects.filter(partition=partition).update(verified_at=now, verify_error=error[:5000])


def partition_tier_forget(*, partition: str) -> int:
    """Forget a partition's tier: it is hot again (restored) or its cold file was deleted by retention."""
    return PartitionTier.objects.filter(partition=partition).delete()[0]


def late_rows_repeating_cold_delete(*, partition: str) -> tuple[str, list[tuple[Any, ...]]]:
    """Delete the late rows of a cold range that repeat rows its cold file already holds (what makes the tiering
    refuse to merge `partition`): (table, the keys deleted). Ingest refuses such rows (409, or counted as metric
    duplicates), so this keeps the row stored first, as ingest would. In one transaction holding a SHARE ROW
    EXCLUSIVE lock on the partition: no late row arrives, and no tiering run merges the partition (it waits for
    its SHARE lock), between finding the keys and deleting them; a merge that committed first dropped the
    partition, and then there is nothing to delete here (NotLateRowsOfAColdRange, raised for a name that is not a
    cold range's late rows too)."""
    with transaction.atomic(), connection.cursor() as cursor:
        late_rows_table(partition=partition)  # NotLateRowsOfAColdRange before anything is locked (catalog only)
        try:
            cursor.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(partition)))
        except DatabaseError as exc:  # a merge dropped it between the two statements
            raise NotLateRowsOfAColdRange(f"{partition} was merged into its cold file meanwhile") from exc
        table, keys = late_rows_repeating_cold(partition=partition)  # under the lock
        if not keys:
            return table, []
        names = REPEAT_KEYS[table]
        columns = list(zip(*keys, strict=True))
        types = {"camera_id": "uuid", "timestamp": "timestamp", "name": "text", "labels": "jsonb"}
        matches = sql.SQL(" AND ").join(
            sql.SQL("late.{name} = repeated.{name}").format(name=sql.Identifier(name))  # key columns are NOT NULL
            for name in names
        )
        cursor.execute(
            sql.SQL(
                "DELETE FROM {partition} AS late USING (SELECT {converted} FROM unnest({arrays}) AS k({listed})) "
                "AS repeated WHERE {matches}"
            ).format(
                partition=sql.Identifier(partition),
                # keys hold the timestamp as naive UTC and the labels as JSON text (late_rows_repeating_cold)
                converted=sql.SQL(", ").join(
                    sql.SQL("timezone('UTC', k.{name}) AS {name}").format(name=sql.Identifier(name))
                    if name == "timestamp"
                    else sql.SQL("k.{name}::{type} AS {name}").format(
                        name=sql.Identifier(name), type=sql.SQL(types[name])
                    )
                    for name in names
                ),
                arrays=sql.SQL(", ").join(
                    sql.SQL("%s::{}[]").format(sql.SQL("timestamp" if name == "timestamp" else "text"))
                    for name in names
                ),
                listed=sql.SQL(", ").join(sql.Identifier(name) for name in names),
                matches=matches,
            ),
            [list(column) for column in columns],
        )
        logger.info("Deleted %d late row(s) of %s repeating its cold rows", cursor.rowcount, partition)
    return table, keys
