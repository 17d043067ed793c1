"""Reads of cold partitions: Parquet files in the archive storage, read with DuckDB (docs/storage.md).

Telemetry does not import the archival app, which owns the storage: archival registers it at start-up
(`register_cold_storage`). A cold file is read by its local path when the storage has one (DuckDB then
reads only the row groups whose statistics match, the camera-and-time sort makes those few), otherwise
through the storage's file object. A file that is missing or unreadable raises ColdDataUnavailable naming
the partition: reads never silently skip a range.
"""

import csv
import io
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from django.core.files.storage import Storage
from django.db import connection
from psycopg import sql

from telemetry.choices import StorageTier
from telemetry.models import PartitionTier

__all__ = [
    "REPEAT_KEYS",
    "ColdDataUnavailable",
    "NotLateRowsOfAColdRange",
    "cold_partitions",
    "cold_query",
    "cold_relation",
    "cold_rows_at",
    "cold_rows_csv",
    "cold_source",
    "cold_storage",
    "duckdb_cursor",
    "late_rows_repeating_cold",
    "late_rows_table",
    "naive_utc",
    "register_cold_storage",
]

_storage_providers: list[Callable[[], Storage]] = []


class ColdDataUnavailable(Exception):
    """A cold partition a read needs cannot be read: its rows are not silently left out."""

    def __init__(self, partitions: Sequence[str], reason: str) -> None:
        super().__init__(f"Cold partition(s) {', '.join(partitions)} cannot be read: {reason}")
        self.partitions = list(partitions)


def register_cold_storage(provider: Callable[[], Storage]) -> None:
    """Register the storage cold files are written to (the archival app does, at start-up)."""
    if provider not in _storage_providers:
        _storage_providers.append(provider)


def cold_storage() -> Storage:
    if not _storage_providers:
        raise ColdDataUnavailable([], "no cold storage is registered (is the archival app installed?)")
    return _storage_providers[-1]()


def naive_utc(moment: datetime) -> datetime:
    """Cold files hold timestamps as UTC without an offset (Parquet TIMESTAMP): compare with these."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def cold_partitions(*, table: str, since: datetime, until: datetime) -> list[PartitionTier]:
    """The cold partitions of `table` whose range meets [since, until), oldest first."""
    return list(
        PartitionTier.objects.filter(
            table=table, tier=StorageTier.COLD, range_start__lt=until, range_end__gt=since
        ).order_by("range_start")
    )


def _any_cold_partition(*, table: str, since: datetime, until: datetime) -> bool:
    """Whether a cold partition of `table` meets [since, until): ingest asks it of every batch, so one plain
    statement on the (table, tier, range_start) index (a third of the ORM's cost per call, measured)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT 1 FROM telemetry_partition_tier WHERE "table" = %s AND tier = %s AND range_start < %s '
            "AND range_end > %s LIMIT 1",
            [table, StorageTier.COLD, until, since],
        )
        return cursor.fetchone() is not None


def cold_source(tier: PartitionTier, *, storage: Storage | None = None) -> Any:
    """What DuckDB reads for a cold partition: its local path, or a pyarrow table read from the storage."""
    storage = storage or cold_storage()
    try:
        path = storage.path(tier.location)
    except NotImplementedError:
        path = None
    try:
        if path is not None:
            if not os.path.exists(path):
                raise ColdDataUnavailable([tier.partition], f"{tier.location} is missing from the storage")
            return path
        import pyarrow.parquet as parquet  # only for storages without local paths

        with storage.open(tier.location, "rb") as handle:
            return parquet.read_table(handle)
    except OSError as exc:
        raise ColdDataUnavailable([tier.partition], f"{type(exc).__name__}: {exc}") from exc


def parquet_table(path: str) -> Any:
    import pyarrow.parquet as parquet

    return parquet.read_table(path)


_engine: duckdb.DuckDBPyConnection | None = None
_engine_lock = threading.Lock()


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on this process's DuckDB engine: opening a DuckDB database costs ~35 ms here, a cursor on an
    open one next to nothing, and cursors may be used from several threads at once."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = duckdb.connect()
            _engine.execute("SET TimeZone = 'UTC'")
        return _engine.cursor()


def cold_query(tiers: Sequence[PartitionTier], query: str, parameters: Sequence[Any]) -> list[tuple]:
    """Run `query` over the union of the cold files of `tiers`; the query names them `{source}` and is fixed
    text from our selectors (values go in `parameters`, numbered $1...)."""
    if not tiers:
        return []
    cursor = duckdb_cursor()
    try:
        values = list(parameters)
        relation = cold_relation(cursor, tiers, values)
        return cursor.execute(query.format(source=relation), values).fetchall()
    except duckdb.Error as exc:
        raise ColdDataUnavailable([tier.partition for tier in tiers], f"{type(exc).__name__}: {exc}") from exc
    finally:
        cursor.close()


def cold_relation(cursor: duckdb.DuckDBPyConnection, tiers: Sequence[PartitionTier], values: list[Any]) -> str:
    """The DuckDB relation (SQL text) of the union of the cold files of `tiers`, for a query on `cursor`: files
    with local paths are read by path (row groups pruned by their statistics), the paths appended to `values`
    as one more numbered parameter; others are read through the storage and registered on the cursor."""
    sources = [cold_source(tier) for tier in tiers]
    if all(isinstance(source, str) for source in sources):
        values.append(list(sources))
        return f"read_parquet(${len(values)})"
    import pyarrow

    name = f"cold_{uuid.uuid4().hex}"
    tables = [parquet_table(source) if isinstance(source, str) else source for source in sources]
    cursor.register(name, pyarrow.concat_tables(tables))
    return name


def cold_rows_csv(
    tiers: Sequence[PartitionTier], *, columns: Sequence[str], since: datetime, until: datetime
) -> Iterator[bytes]:
    """The cold rows of [since, until) as CSV for PostgreSQL's COPY FROM (timestamps with their +00 offset, so
    the session time zone does not matter), in chunks."""
    listed = ", ".join(
        f"strftime(\"{name}\", '%Y-%m-%d %H:%M:%S.%f+00')" if name == "timestamp" else f'"{name}"' for name in columns
    )
    rows = cold_query(
        tiers,
        # In id order, the order the rows had in their partition: float sums then add up to the same last bit.
        f"SELECT {listed} FROM {{source}} WHERE timestamp >= $1 AND timestamp < $2 ORDER BY id",  # noqa: S608
        [naive_utc(since), naive_utc(until)],
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, row in enumerate(rows, start=1):
        writer.writerow(["" if value is None else value for value in row])
        if index % 10_000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# The key by which a late row repeats a row already stored, per table: where PostgreSQL has a unique index, the
# natural key it checks on attached partitions; for detections, their frame's (camera_id, timestamp) — a frame's
# detections are written with it, all at once, so a late detection of a frame whose detections are already cold
# belongs to a repeated frame. Late rows must not repeat a cold row's key, at ingest (telemetry.services.ingest)
# or when the tiering merges them into the range's file (archival.services.tiering). Each starts with
# (camera_id, timestamp), the columns cold files are sorted and looked up by (cold_rows_at).
REPEAT_KEYS: dict[str, tuple[str, ...]] = {
    "frame_metadata": ("camera_id", "timestamp"),
    "detections": ("camera_id", "timestamp"),
    "system_metrics": ("camera_id", "timestamp", "name", "labels"),
}


def cold_rows_at(
    *, table: str, keys: Sequence[tuple[uuid.UUID, datetime]], columns: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """The cold rows of `table` whose (camera_id, timestamp) is one of `keys`: (camera_id, timestamp, *columns)
    as stored (uuid as text, timestamps as naive UTC). Costs one query of PartitionTier when no key falls in a
    cold range (ingest's common case); otherwise one DuckDB query over the cold files of those ranges, which
    skips every row group whose camera and time statistics miss the keys."""
    if not keys:
        return []
    moments = [moment for _, moment in keys]
    since, until = min(moments), max(moments) + timedelta(microseconds=1)
    if not _any_cold_partition(table=table, since=since, until=until):
        return []
    tiers = cold_partitions(table=table, since=since, until=until)
    tiers = [tier for tier in tiers if any(tier.range_start <= moment < tier.range_end for moment in moments)]
    if not tiers:
        return []
    wanted = {(str(camera_id), naive_utc(moment)) for camera_id, moment in keys}
    cameras = sorted({camera for camera, _ in wanted})
    instants = sorted({moment for _, moment in wanted})
    listed = ", ".join(f'"{name}"' for name in ("camera_id", "timestamp", *columns))
    found = cold_query(
        tiers,
        f"SELECT {listed} FROM {{source}} WHERE camera_id >= $1 AND camera_id <= $2 "  # noqa: S608 - our names
        "AND timestamp >= $3 AND timestamp <= $4 AND list_contains($5, camera_id) AND list_contains($6, timestamp)",
        [cameras[0], cameras[-1], instants[0], instants[-1], cameras, instants],
    )
    return [tuple(row) for row in found if (row[0], row[1]) in wanted]


class NotLateRowsOfAColdRange(Exception):
    """The partition named is not an attached partition of a range whose rows are already cold."""


def late_rows_table(*, partition: str) -> str:
    """The table of `partition` when it is an attached partition of a cold range (its late rows); else
    NotLateRowsOfAColdRange. Catalog only: no cold file is read."""
    tier = PartitionTier.objects.filter(partition=partition, tier=StorageTier.COLD).first()
    if tier is None:
        raise NotLateRowsOfAColdRange(f"{partition} is not the partition of a cold range")
    with connection.cursor() as cursor:
        cursor.execute(
            # By name, not to_regclass(): PostgreSQL 15's raises on a name that is not valid SQL syntax.
            "SELECT 1 FROM pg_inherits JOIN pg_class ON pg_class.oid = inhrelid "
            "WHERE pg_class.relname = %s AND inhparent = %s::regclass",
            [partition, tier.table],
        )
        if cursor.fetchone() is None:
            raise NotLateRowsOfAColdRange(
                f"{partition} holds no late rows: its range is cold and no partition of it is attached"
            )
    return tier.table


def late_rows_repeating_cold(*, partition: str) -> tuple[str, list[tuple[Any, ...]]]:
    """(table, keys) of the rows of `partition` — the late rows of a range already cold, swept into a partition
    of their own — that repeat a row of the range's cold file (REPEAT_KEYS; camera_id as text, timestamp as naive
    UTC, labels as JSON text), sorted. The tiering refuses to merge such rows; these are what an operator deletes
    (telemetry.services.tiering.late_rows_repeating_cold_delete). Late partitions hold a sweep's worth of rows: their
    keys are read here and looked up in the file by camera and instant (cold_rows_at)."""
    table = late_rows_table(partition=partition)
    with connection.cursor() as cursor:
        key = REPEAT_KEYS.get(table, ())
        if not key:
            return table, []
        rest = key[2:]
        listed = [
            sql.SQL("camera_id::text"),
            sql.SQL("timezone('UTC', \"timestamp\")"),
            *(sql.SQL("{}::text").format(sql.Identifier(name)) for name in rest),
        ]
        cursor.execute(
            sql.SQL("SELECT DISTINCT {} FROM {}").format(sql.SQL(", ").join(listed), sql.Identifier(partition))
        )
        late = {tuple(row) for row in cursor.fetchall()}
    found = cold_rows_at(
        table=table,
        keys=[(uuid.UUID(camera), moment.replace(tzinfo=UTC)) for camera, moment, *_ in late],
        columns=rest,
    )
    return table, sorted(late & {tuple(row) for row in found})
