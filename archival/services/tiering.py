"""Sealed -> cold: write a sealed partition as a verified Parquet file, then detach and drop it; bring a cold
partition back; re-verify cold files (docs/storage.md).

The path for one partition (`partition_tier_to_cold`) keeps the safe order and the single transaction of the
gzip export (archival.services.archives): a SHARE lock on the partition from the first exported row to the DROP
(late writers to that range wait, readers carry on), and in order:

1. the partition's rows are read as they lie in the heap (ingest order: time order, give or take late rows),
   by one of two readers (`_partition_rows`): the ADBC PostgreSQL driver on a second connection that imports
   this transaction's snapshot (binary COPY decoded into Arrow in C++, its_camera.db.snapshot_query), or, where
   that cannot be used (a caller's transaction around this one, a Citus coordinator, the second connection
   refused, ARCHIVE_COLD_READER="csv"), COPY … TO STDOUT as CSV in this transaction, read in chunks of whole
   rows (its_camera.db.copy_out) and parsed by pyarrow. A partition bigger than TIERING_IN_MEMORY_BYTES is read
   in passes, each the rows of a range of its cameras, so memory holds one pass (_camera_passes);
2. while PostgreSQL sends rows, a second thread turns each chunk into Arrow with the file's schema, adds it to
   the row count and the content checksum (the sum of DuckDB's 64-bit hash of every row: independent of order,
   the same as files written before) and splits it by camera; once the read ends, each camera's rows (sorted by
   (timestamp, id) when late rows put them out of order) are written into one Parquet file in the file's order,
   (camera_id, timestamp, id): zstd, row groups of ROW_GROUP_ROWS with min/max statistics, so a camera-hour
   read touches a few row groups. Late rows merged into a range already cold are sorted together with the old
   file's rows by DuckDB instead;
3. the file is saved through Django's storage API with a manifest, then read back *from the storage*:
   file size and SHA-256, row count, content checksum. Any difference raises ArchiveVerificationError;
4. the PartitionTier row says cold (telemetry.services.tiering.partition_tier_cold) and the partition is
   detached and dropped — in the same transaction, so a crash at any step leaves the rows in exactly one tier:
   before the commit, in PostgreSQL (a file already saved is an orphan that reads never look at); after it,
   in the file.

ArchiveRun rows are written outside that transaction, so a failure is recorded.
"""

import functools
import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.parquet as pa_parquet
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from archival.choices import ArchiveAction, ArchiveReason, ArchiveState
from archival.conf import archival_setting
from archival.models import ArchiveRun, RetentionPolicy
from archival.services.archives import (
    ArchiveError,
    ArchiveVerificationError,
    _detach_and_drop,
    _finish,
    _log_failure,
    _partition_run_start,
    _partitioned_table,
    _session_for_archiving,
    _still_attached,
    _temporary_directory,
    _TemporaryArchive,
    archiving_settings,
    table_columns,
)
from archival.storage import archive_storage
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.citus import citus_installed
from its_camera.db.copy_out import CopyOut, CsvArrowReader
from its_camera.db.locks import advisory_lock
from its_camera.db.snapshot_query import SnapshotQuery, SnapshotQueryUnavailable, snapshot_query_available
from telemetry.choices import StorageTier
from telemetry.models import PartitionTier
from telemetry.partitioning import UtcTimePartition
from telemetry.selectors.cold import REPEAT_KEYS, ColdDataUnavailable, cold_source
from telemetry.selectors.partitions import partition_ranges
from telemetry.services.partitions import LOCK_NAME as PARTITIONS_LOCK_NAME
from telemetry.services.partitions import partition_create
from telemetry.services.tiering import (
    late_row_grace,
    partition_tier_cold,
    partition_tier_forget,
    partition_tier_verified,
)

__all__ = [
    "COLD_FORMAT",
    "TIERING_LOCK",
    "ColdFile",
    "TieringResult",
    "cold_file_delete",
    "cold_file_verify",
    "cold_files_verify",
    "cold_restore",
    "partition_tier_to_cold",
    "partitions_due_cold",
    "partitions_tier",
]

logger = logging.getLogger(__name__)

COLD_FORMAT = "its-camera-cold/1"
TIERING_LOCK = "archival.tier_partitions"
ROW_GROUP_ROWS = 122_880  # DuckDB's default row group: a camera-hour of a 100-camera day spans one or two
CHUNK_BYTES = 1 << 20
COPY_CHUNK_BYTES = 8 << 20  # rows PostgreSQL sends are parsed, checksummed and written this many bytes at a time
ZSTD_LEVEL = 1  # level 3 made files 0.1 % smaller and the write slower
# A partition up to this size (heap and TOAST) is read as it lies and put in camera order here, in memory (about
# its size again); a bigger one is read in passes of this size, each a range of its cameras (_camera_passes).
TIERING_IN_MEMORY_BYTES = 1 << 30
TIERING_CONCURRENCY = 2  # tables tiered side by side: PostgreSQL's COPY on one core, parsing/compressing on the other
# DuckDB's working memory while writing or verifying a cold file; past it, it spills to a temporary directory
# beside the archive files. A day's partition is sorted within this.
TIERING_MEMORY_LIMIT = "2GB"

# The type a cold file's column has, as DuckDB names it (recorded in the manifest), by its Arrow type.
_COLD_TYPES = {
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.timestamp("us"): "TIMESTAMP",
}
# Cold files are sorted by camera, then time (then id, when this side puts them in order).
SORT_COLUMNS = ("camera_id", "timestamp")


@dataclass(frozen=True)
class ColdFile:
    location: str
    manifest_location: str
    rows: int
    bytes: int
    sha256: str
    content_checksum: str


@dataclass
class TieringResult:
    runs: list[ArchiveRun]
    deferred: int = 0
    interrupted: int = 0  # runs a dead worker left RUNNING, marked failed (their transaction rolled back)

    @property
    def failed(self) -> list[ArchiveRun]:
        return [run for run in self.runs if run.state == ArchiveState.FAILED]

    def summary(self) -> dict[str, int]:
        return {
            "tiered": sum(run.state == ArchiveState.DROPPED for run in self.runs),
            "rows": sum(run.rows or 0 for run in self.runs if run.state == ArchiveState.DROPPED),
            "failed": len(self.failed),
            "deferred": self.deferred,
            "interrupted": self.interrupted,
        }


@contextmanager
def _duckdb(directory: str) -> Iterator[duckdb.DuckDBPyConnection]:
    engine = duckdb.connect()
    try:
        engine.execute("SET TimeZone = 'UTC'")
        engine.execute("SET preserve_insertion_order = false")
        engine.execute(f"SET temp_directory = '{directory}'")  # our own temporary directory, no user input
        engine.execute(f"SET memory_limit = '{TIERING_MEMORY_LIMIT}'")
        yield engine
    finally:
        engine.close()


def _content_checksum_parts(engine: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> tuple[int, int]:
    """(rows, sum of DuckDB's 64-bit hash of every row) of a relation: the same whatever order the rows are in,
    and additive, so it can be summed chunk by chunk."""
    hashed = ", ".join(f'"{name}"' for name in columns)
    ((rows, total),) = engine.execute(
        f"SELECT count(*), coalesce(sum(hash({hashed})), 0)::VARCHAR FROM {relation}"  # noqa: S608 - our names
    ).fetchall()
    return int(rows), int(total)


def _content_checksum(engine: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> tuple[int, str]:
    rows, total = _content_checksum_parts(engine, relation, columns)
    return rows, f"{rows}:{total}"


def _file_sha256(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@dataclass(frozen=True)
class CameraRange:
    """The cameras from `first` to `last` (uuid text, inclusive): one pass over a partition bigger than
    TIERING_IN_MEMORY_BYTES."""

    first: str
    last: str


class _ColdLayout(CsvArrowReader):
    """How a table's rows become a cold file's Arrow tables: the CSV PostgreSQL sends (its columns as they are, in
    a UTC session) parsed with the file's schema, or the batches ADBC decodes `converted` to the same values."""

    def __init__(self, columns: list[tuple[str, str]]) -> None:
        try:
            super().__init__(columns)
        except ValueError as exc:
            raise ArchiveError(str(exc)) from exc
        self.columns = columns
        self.cold_types = {field.name: _COLD_TYPES[field.type] for field in self.schema}
        self.sort_columns = [name for name in SORT_COLUMNS if name in self.names]

    def select(self, partition: str, *, cameras: CameraRange | None = None) -> sql.Composed:
        """The partition's rows (those of the `cameras` range only, when given), as they lie: a sequential scan,
        as fast as COPY goes. The columns as they are: casting uuid or jsonb to text in the SELECT made
        PostgreSQL's binary COPY of 5 M detection rows 50 % slower (8.1 s against 12.3 s), so the text is made
        here (`converted`)."""
        statement = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in self.names), sql.Identifier(partition)
        )
        if cameras is not None:
            statement = sql.SQL("{} WHERE camera_id BETWEEN {} AND {}").format(
                statement, sql.Literal(cameras.first), sql.Literal(cameras.last)
            )
        return statement

    def copy(self, partition: str, *, cameras: CameraRange | None = None) -> sql.Composed:
        """COPY of the partition's rows as CSV (`select`)."""
        return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(self.select(partition, cameras=cameras))

    def converted(self, batch: pa.RecordBatch) -> pa.Table:
        """A batch ADBC decoded (binary COPY), with the file's schema and values, the same as the CSV path's: uuid
        (arrow.uuid) as PostgreSQL writes it; jsonb (arrow.json) is already jsonb's text; timestamptz arrives as
        UTC microseconds, kept without the offset."""
        columns = []
        for column in batch.columns:
            if isinstance(column, pa.ExtensionArray):
                column = _uuid_text(column) if column.type.extension_name == "arrow.uuid" else column.storage
            columns.append(column)
        return pa.Table.from_arrays(columns, names=self.names).cast(self.schema)


def _uuid_text(uuids: pa.ExtensionArray) -> pa.Array:
    """uuid values as PostgreSQL's text (lowercase, hyphenated), each distinct value formatted once: a chunk of
    a partition holds a few cameras' ids, so this costs a hash lookup a row."""
    encoded = pa_compute.dictionary_encode(uuids.storage)
    texts = [None if value is None else str(uuid.UUID(bytes=value)) for value in encoded.dictionary.to_pylist()]
    return pa_compute.take(pa.array(texts, pa.string()), encoded.indices)


class _ParquetSink:
    """The cold file, written from Arrow tables that arrive in the file's order: zstd, row groups of
    ROW_GROUP_ROWS with min/max statistics. Counts what it writes; sums the content checksum of what it is given
    to check (as soon as the rows are parsed, so that work overlaps PostgreSQL's)."""

    def __init__(self, path: str, layout: _ColdLayout, engine: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.layout = layout
        self.engine = engine.cursor()  # its own cursor: the merge streams its sorted rows from the engine meanwhile
        self.writer: pa_parquet.ParquetWriter | None = None  # opened with the first rows (_dictionary_columns)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0  # checksummed
        self.written = 0
        self.hash_sum = 0

    def checksum(self, table: pa.Table) -> pa.Table:
        self.engine.register("parsed", table)
        try:
            rows, total = _content_checksum_parts(self.engine, "parsed", self.layout.names)
        finally:
            self.engine.unregister("parsed")
        self.rows += rows
        self.hash_sum += total
        return table

    def write(self, table: pa.Table) -> None:
        self.written += table.num_rows
        self.pending.append(table)
        self.pending_rows += table.num_rows
        while self.pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _open(self, first: pa.Table) -> pa_parquet.ParquetWriter:
        return pa_parquet.ParquetWriter(
            self.path,
            self.layout.schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            write_statistics=True,
            use_dictionary=_dictionary_columns(first),
        )

    def _flush(self, rows: int) -> None:
        ready = pa.concat_tables(self.pending)
        if self.writer is None:
            self.writer = self._open(ready)
        self.writer.write_table(ready.slice(0, rows), row_group_size=rows)
        rest = ready.slice(rows)
        self.pending, self.pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> str:
        """Writes the last row group and the footer; the content checksum."""
        if self.pending_rows:
            self._flush(self.pending_rows)
        if self.writer is None:
            self.writer = self._open(self.layout.schema.empty_table())
        self.writer.close()
        self.engine.close()
        return f"{self.rows}:{self.hash_sum}"


def _dictionary_columns(sample: pa.Table) -> list[str]:
    """The columns worth dictionary-encoding, judged on the first rows written: text (camera ids, statuses,
    object types repeat), and other columns whose values repeat (rounded measurements, constant sizes). A column
    of mostly distinct values (ids, raw doubles) gains nothing from a dictionary; building one anyway, as
    pyarrow does by default, tripled the write time of such columns (docs/storage.md)."""
    chosen = []
    for field in sample.schema:
        repeats = sample.num_rows and pa_compute.count_distinct(sample[field.name]).as_py() * 2 <= sample.num_rows
        if pa.types.is_string(field.type) or repeats:
            chosen.append(field.name)
    return chosen


class _CameraRuns:
    """A partition's rows, arriving in the heap's order (ingest order: time order, give or take late rows), put
    in the file's order without sorting the day: each chunk is split by camera as it is parsed (a stable sort of
    one chunk, overlapping PostgreSQL's COPY), so each camera's run is its rows in arrival order; a run that is
    not in (timestamp, id) order (late rows) is sorted on its own at the end."""

    def __init__(self) -> None:
        self.runs: dict[str, list[pa.Table]] = defaultdict(list)

    def add(self, table: pa.Table) -> None:
        # Sorting the chunk's few distinct camera ids and then the rows by their camera's rank (integers) costs a
        # fraction of sorting the rows by their camera id text.
        cameras = pa_compute.dictionary_encode(table["camera_id"].combine_chunks())
        in_order = pa_compute.sort_indices(cameras.dictionary)
        ranks = pa_compute.rank(cameras.dictionary, sort_keys="ascending", tiebreaker="first")
        row_ranks = pa_compute.take(ranks, cameras.indices)
        order = pa_compute.sort_indices(row_ranks)  # stable: each camera's rows keep their arrival order
        by_camera = table.take(order)
        ends = pa_compute.run_end_encode(pa_compute.take(row_ranks, order)).run_ends.to_pylist()
        start = 0
        for camera, end in zip(cameras.dictionary.take(in_order).to_pylist(), ends, strict=True):
            self.runs[camera].append(by_camera.slice(start, end - start))
            start = end

    def tables(self) -> Iterator[pa.Table]:
        """Each camera's rows, cameras in order, each sorted by (timestamp, id)."""
        for camera in sorted(self.runs):
            run = pa.concat_tables(self.runs.pop(camera)).combine_chunks()
            if not _in_time_order(run):
                run = run.take(pa_compute.sort_indices(run, [("timestamp", "ascending"), ("id", "ascending")]))
            yield run


_CAMERAS = """
WITH RECURSIVE cameras AS (
    (SELECT camera_id FROM {partition} ORDER BY camera_id LIMIT 1)
    UNION ALL
    SELECT (SELECT camera_id FROM {partition} WHERE camera_id > cameras.camera_id ORDER BY camera_id LIMIT 1)
    FROM cameras WHERE cameras.camera_id IS NOT NULL
)
SELECT camera_id::text FROM cameras WHERE camera_id IS NOT NULL
"""


def _camera_passes(pg: psycopg.Cursor, partition: str, heap_bytes: int) -> list[CameraRange | None]:
    """How to read a partition in memory-sized pieces that are each whole cameras, in the file's order: one pass
    (None: every row) when its heap fits in TIERING_IN_MEMORY_BYTES, else consecutive ranges of its cameras,
    each about that many bytes when cameras send alike (a fleet's do: the same frame rate and model). Each pass
    reads the heap in its order, keeping its cameras' rows (PostgreSQL scans the day once more a pass), whatever
    the heap's layout: read in (camera_id, timestamp) index order instead, a heap whose cameras' rows are
    interleaved (written before ingest grouped batches by camera, or by one-frame batches) is read at random, which
    made a 1 M-frame day's detections COPY twice as slow (docs/storage.md). The cameras come from the index on
    camera_id, one probe each. (Every tiered table's camera_id is NOT NULL; one that allowed NULL would be read in
    one pass.)"""
    if heap_bytes <= TIERING_IN_MEMORY_BYTES:
        return [None]
    pg.execute(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'camera_id'", [partition]
    )
    (not_null,) = pg.fetchone() or (False,)
    if not not_null:  # a camera range would leave out rows without a camera
        return [None]
    pg.execute(sql.SQL(_CAMERAS).format(partition=sql.Identifier(partition)))
    cameras = [camera for (camera,) in pg.fetchall()]
    passes = min(len(cameras), -(-heap_bytes // max(TIERING_IN_MEMORY_BYTES, 1)))
    if passes <= 1:
        return [None]
    size = -(-len(cameras) // passes)
    return [
        CameraRange(cameras[start], cameras[min(start + size, len(cameras)) - 1])
        for start in range(0, len(cameras), size)
    ]


def _in_time_order(run: pa.Table) -> bool:
    if run.num_rows < 2:
        return True
    moments, ids = run["timestamp"].chunk(0), run["id"].chunk(0)
    earlier, later = moments.slice(0, len(moments) - 1), moments.slice(1)
    backwards = pa_compute.less(later, earlier)
    tie_backwards = pa_compute.and_(
        pa_compute.equal(later, earlier), pa_compute.less(ids.slice(1), ids.slice(0, len(ids) - 1))
    )
    return not (pa_compute.any(backwards).as_py() or pa_compute.any(tie_backwards).as_py())


def _write_in_background(chunks: Iterator[Any], write: Callable[[Any], None]) -> None:
    """Hand each chunk to `write` in a thread of its own, while this one keeps producing the next: while
    PostgreSQL formats rows, they are parsed, checksummed and split on the other core; once the read ends, one
    camera's run is put together while the one before is compressed and written (_write_in_camera_order)."""
    waiting: queue.Queue[Any] = queue.Queue(maxsize=4)
    failures: list[BaseException] = []

    def consume() -> None:
        while (chunk := waiting.get()) is not None:
            if not failures:  # after a failure, drain so the reader never blocks
                try:
                    write(chunk)
                except BaseException as exc:  # noqa: BLE001 - raised in the reading thread below
                    failures.append(exc)

    worker = threading.Thread(target=consume, name="cold-file-writer", daemon=True)
    worker.start()
    try:
        with closing(chunks):  # type: ignore[type-var]
            for chunk in chunks:
                if failures:
                    break
                waiting.put(chunk)
    finally:
        waiting.put(None)
        worker.join()
    if failures:
        raise ArchiveError(f"Writing the cold file failed: {failures[0]}") from failures[0]


def _write_in_camera_order(sink: _ParquetSink, copied: Iterable[Any], parse: Callable[[Any], pa.Table]) -> None:
    """One read of rows as they lie: each chunk split by camera as it arrives; then the cameras in order, each
    camera's run put together (and sorted, if late rows need it) here while the one before is compressed and
    written in the background: once the read ends, only this side works, and the two take a core each (on the
    lab's 1.7 M-frame day, 8.5 M detection rows: 4.5-5.6 s -> 3.7-4.4 s)."""
    runs = _CameraRuns()
    _write_in_background(iter(copied), lambda chunk: runs.add(sink.checksum(parse(chunk))))
    _write_in_background(runs.tables(), sink.write)


def _partition_rows(
    pg: psycopg.Cursor,
    layout: _ColdLayout,
    partition: str,
    *,
    cameras: CameraRange | None = None,
    committed_only: bool,
    reading: ExitStack,
) -> tuple[CopyOut | SnapshotQuery, Callable[[Any], pa.Table]]:
    """Where the partition's rows are read from, and how each piece read becomes an Arrow table of the file's
    schema. By ADBC on a second connection that imports this transaction's snapshot (binary COPY decoded in
    C++: PostgreSQL and this side both spend less than on CSV, docs/storage.md) when ARCHIVE_COLD_READER is
    "adbc", the driver is installed, this is not a Citus coordinator (not tested there) and the transaction is
    `committed_only` (another session sees committed rows only: not inside a caller's transaction that may have
    written some); otherwise, or if that connection cannot be opened, COPY as CSV in this transaction, parsed
    by pyarrow."""
    if (
        committed_only
        and archival_setting("ARCHIVE_COLD_READER") == "adbc"
        and snapshot_query_available()
        and not citus_installed()
    ):
        query = SnapshotQuery(pg, layout.select(partition, cameras=cameras), settings=archiving_settings())
        try:
            return reading.enter_context(query), layout.converted
        except SnapshotQueryUnavailable as exc:
            logger.warning("Reading %s as CSV instead of through ADBC: %s", partition, exc)
    return CopyOut(pg, layout.copy(partition, cameras=cameras), chunk_bytes=COPY_CHUNK_BYTES), layout.parsed


def _table_bytes(pg: psycopg.Cursor, partition: str) -> int:
    pg.execute("SELECT pg_table_size(%s::regclass)", [partition])
    return int(pg.fetchone()[0])  # type: ignore[index]


def _write_cold_file(
    pg: psycopg.Cursor,
    *,
    storage: Storage,
    run: ArchiveRun,
    table: str,
    partition: str,
    start: datetime,
    end: datetime,
    merge_with: PartitionTier | None,
    committed_only: bool,
) -> ColdFile:
    layout = _ColdLayout(table_columns(table))
    directory = tempfile.mkdtemp(prefix=f"{partition}.", dir=_temporary_directory(storage))
    parquet_path = os.path.join(directory, "rows.parquet")
    try:
        exported = 0
        with _duckdb(directory) as engine:
            sink = _ParquetSink(parquet_path, layout, engine)
            read = functools.partial(_partition_rows, pg, layout, partition, committed_only=committed_only)
            if merge_with is not None:
                with ExitStack() as reading:
                    copied, parse = read(reading=reading)
                    _write_merged(
                        engine,
                        sink,
                        layout,
                        late=map(parse, copied),
                        earlier=merge_with,
                        storage=storage,
                        table=table,
                        partition=partition,
                    )
                    exported = copied.rows
            else:  # every table with a cold tier has camera_id (archival.targets.PARTITIONED_TABLES)
                for cameras in _camera_passes(pg, partition, _table_bytes(pg, partition)):
                    with ExitStack() as reading:
                        copied, parse = read(cameras=cameras, reading=reading)
                        _write_in_camera_order(sink, copied, parse)
                        exported += copied.rows
            content_checksum = sink.close()
        rows = sink.rows
        expected = exported + (merge_with.rows or 0 if merge_with is not None else 0)
        if rows != expected or sink.written != expected:
            raise ArchiveError(f"{sink.written} rows were written ({rows} read) where {expected} were exported")
        size, sha256 = _file_sha256(parquet_path)
        base = f"cold/{table}/{partition}/{partition}.run{run.pk}"
        with open(parquet_path, "rb") as handle:
            location = storage.save(f"{base}.parquet", _TemporaryArchive(handle, name=parquet_path))
    finally:
        if os.path.exists(parquet_path):
            os.unlink(parquet_path)
        shutil.rmtree(directory, ignore_errors=True)
    manifest = {
        "format": COLD_FORMAT,
        "table": table,
        "partition": partition,
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        "rows": rows,
        "bytes": size,
        "sha256": sha256,
        "content_checksum": content_checksum,
        "columns": [
            {"name": name, "type": pg_type, "cold_type": layout.cold_types[name]} for name, pg_type in layout.columns
        ],
        "data_format": "parquet",
        "compression": "zstd",
        "sorted_by": ", ".join(f'"{name}"' for name in layout.sort_columns),
        "time_zone": "UTC (timestamps stored without offset)",
        "data_file": location,
        "archive_run": run.pk,
        "merged_from": merge_with.location if merge_with is not None else None,
    }
    manifest_location = storage.save(f"{base}.manifest.json", ContentFile(json.dumps(manifest, indent=2).encode()))
    return ColdFile(
        location=location,
        manifest_location=manifest_location,
        rows=rows,
        bytes=size,
        sha256=sha256,
        content_checksum=content_checksum,
    )


def _write_merged(
    engine: duckdb.DuckDBPyConnection,
    sink: _ParquetSink,
    layout: _ColdLayout,
    *,
    late: Iterator[pa.Table],
    earlier: PartitionTier,
    storage: Storage,
    table: str,
    partition: str,
) -> None:
    """Late rows of a range already cold: the new file holds the old file's rows and these, sorted together by
    DuckDB (spilling past its memory limit). The late rows are few (a DEFAULT-partition sweep's worth)."""
    engine.register("late", pa.concat_tables([layout.schema.empty_table(), *late]))
    old = cold_source(earlier, storage=storage)
    if isinstance(old, str):
        earlier_rows = f"read_parquet('{old}')"
    else:
        engine.register("earlier", old)
        earlier_rows = "earlier"
    listed = ", ".join(f'"{name}"' for name in layout.names)
    order = ", ".join(f'"{name}"' for name in [*layout.sort_columns, "id"] if name in layout.names)
    _refuse_repeated_keys(engine, earlier=earlier_rows, late="late", table=table, partition=partition)
    both = f"SELECT {listed} FROM {earlier_rows} UNION ALL SELECT {listed} FROM late"  # noqa: S608
    merged = engine.sql(f"SELECT {listed} FROM ({both}) ORDER BY {order}").to_arrow_reader(ROW_GROUP_ROWS)  # noqa: S608
    for batch in merged:
        sink.write(sink.checksum(pa.Table.from_batches([batch]).cast(layout.schema)))


def _refuse_repeated_keys(
    engine: duckdb.DuckDBPyConnection, *, earlier: str, late: str, table: str, partition: str
) -> None:
    """Late rows that repeat the key (REPEAT_KEYS) of a row already in the range's cold file are not merged into
    it: in the file no unique index would ever see the duplicate (and a repeated frame's late detections would
    double its detections). The run fails (the late rows stay readable in PostgreSQL, the old file stays the
    range's) and its alert names the keys and the command that deletes them. Ingest refuses such rows (409) since
    it checks cold files; this is the backstop for rows stored before, or by hand."""
    key = REPEAT_KEYS.get(table)
    if not key:
        return
    listed = ", ".join(f'"{name}"' for name in key)
    repeated = engine.execute(
        f"SELECT {listed} FROM {earlier} INTERSECT SELECT {listed} FROM {late} ORDER BY {listed} LIMIT 3"  # noqa: S608
    ).fetchall()
    if repeated:
        shown = "; ".join(", ".join(str(value) for value in row) for row in repeated)
        raise ArchiveError(
            f"Late rows of {partition} repeat ({', '.join(key)}) of rows already cold, e.g. {shown}: not merged; "
            f"`manage.py archive late-duplicates {partition} --delete` (or the archive run's admin action) deletes "
            "them, and the next run merges the rest"
        )


def cold_file_verify(
    *, location: str, rows: int, size: int, sha256: str, content_checksum: str, storage: Storage | None = None
) -> None:
    """Read a cold file back from the storage and check it: size, SHA-256, rows, content checksum. Raises
    ArchiveVerificationError on any difference (a missing file included)."""
    storage = storage or archive_storage()
    if not storage.exists(location):
        raise ArchiveVerificationError(f"The cold file {location} is missing from the storage")
    try:
        local: str | None = storage.path(location)
    except NotImplementedError:
        local = None
    directory = tempfile.mkdtemp(prefix="verify.", dir=_temporary_directory(storage))
    downloaded = os.path.join(directory, "file.parquet")
    try:
        digest = hashlib.sha256()
        read = 0
        # Read back through the storage (what a restore or a read would get), hashing as it streams; a storage
        # without local paths is downloaded once for DuckDB.
        with storage.open(location, "rb") as stream:
            target = open(downloaded, "wb") if local is None else None  # noqa: SIM115 - closed below
            try:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    read += len(chunk)
                    if target is not None:
                        target.write(chunk)
            finally:
                if target is not None:
                    target.close()
        problems = []
        if read != size:
            problems.append(f"{read} bytes instead of {size}")
        if digest.hexdigest() != sha256:
            problems.append("file SHA-256 differs")
        if not problems:
            try:
                with _duckdb(directory) as engine:
                    path = local or downloaded
                    engine.execute(f"CREATE VIEW cold AS SELECT * FROM read_parquet('{path}')")  # noqa: S608
                    names = [row[0] for row in engine.execute("DESCRIBE cold").fetchall()]
                    counted, checksum = _content_checksum(engine, "cold", names)
            except duckdb.Error as exc:
                raise ArchiveVerificationError(f"{location} is not a readable Parquet file: {exc}") from exc
            if counted != rows:
                problems.append(f"{counted} rows instead of {rows}")
            if checksum != content_checksum:
                problems.append("content checksum differs")
        if problems:
            raise ArchiveVerificationError(f"{location} fails verification: {'; '.join(problems)}")
    finally:
        if os.path.exists(downloaded):
            os.unlink(downloaded)
        shutil.rmtree(directory, ignore_errors=True)


def partition_tier_to_cold(
    *,
    policy: RetentionPolicy,
    partition: str,
    start: datetime,
    end: datetime,
    now: datetime,
    reason: str = ArchiveReason.EXPIRED,
    requested_by: str = "",
) -> ArchiveRun:
    """Write one partition of `policy.table` as a verified cold file, then detach and drop it, in one
    transaction (module docstring). Returns the ArchiveRun: DROPPED when done, FAILED (partition untouched,
    every row still in PostgreSQL) otherwise."""
    table = _partitioned_table(policy.table)
    run = _partition_run_start(
        policy=policy,
        action=ArchiveAction.TIER,
        reason=reason,
        table=table.table,
        partition=partition,
        start=start,
        end=end,
        requested_by=requested_by,
    )
    started = time.perf_counter()
    storage = archive_storage()
    cold: ColdFile | None = None
    earlier = PartitionTier.objects.filter(partition=partition, tier=StorageTier.COLD).first()
    outermost = not connection.in_atomic_block  # nothing uncommitted of a caller's that a second session misses
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            pg = cursor.cursor
            _session_for_archiving(pg)
            if not _still_attached(table.table, partition, start, end):
                raise ArchiveError(f"{partition} is no longer a partition of {table.table} with the planned range")
            pg.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(partition)))
            cold = _write_cold_file(
                pg,
                storage=storage,
                run=run,
                table=table.table,
                partition=partition,
                start=start,
                end=end,
                merge_with=earlier,
                committed_only=outermost,
            )
            cold_file_verify(
                location=cold.location,
                rows=cold.rows,
                size=cold.bytes,
                sha256=cold.sha256,
                content_checksum=cold.content_checksum,
                storage=storage,
            )
            partition_tier_cold(
                table=table.table,
                partition=partition,
                start=start,
                end=end,
                now=now,
                rows=cold.rows,
                location=cold.location,
                size=cold.bytes,
                checksum=cold.sha256,
                content_checksum=cold.content_checksum,
            )
            _detach_and_drop(pg, table=table.table, partition=partition)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the partition in place and is recorded
        _log_failure(exc, "Tiering %s to cold failed; the partition is left in place", partition)
        if cold is not None:
            _delete_quietly(storage, cold.location, cold.manifest_location)
        return _finish(run, state=ArchiveState.FAILED, started=started, error=f"{type(exc).__name__}: {exc}")
    if earlier is not None and earlier.location != cold.location:
        _delete_quietly(storage, earlier.location)  # merged into the new file, which is now the range's only one
    return _finish(
        run,
        state=ArchiveState.DROPPED,
        started=started,
        rows=cold.rows,
        bytes=cold.bytes,
        checksum=cold.sha256,
        content_checksum=cold.content_checksum,
        location=cold.location,
        manifest_location=cold.manifest_location,
    )


def _delete_quietly(storage: Storage, *names: str) -> None:
    # A file nobody points at any more: failing to delete it loses nothing (an orphan, reported by verify).
    for name in names:
        try:
            if name and storage.exists(name):
                storage.delete(name)
        except OSError:
            logger.warning("Could not delete %s from the archive storage", name, exc_info=True)


def partitions_due_cold(*, policy: RetentionPolicy, now: datetime) -> list[tuple[str, datetime, datetime]]:
    """Partitions of `policy.table` to write cold now, oldest first: sealed ones whose range ended
    `policy.cold_after_days` ago, and attached partitions of a range that is already cold (late rows, once
    their grace has passed), to be merged into its file."""
    if policy.cold_after_days is None:
        return []
    cutoff = now - timedelta(days=policy.cold_after_days)
    tiers = {t.partition: t for t in PartitionTier.objects.filter(table=policy.table)}
    due = []
    for attached in partition_ranges(policy.table):
        if attached.is_default or attached.start is None or attached.end is None:
            continue
        tier = tiers.get(attached.name)
        if tier is None:
            continue
        sealed_and_old = tier.tier == StorageTier.SEALED and attached.end <= cutoff
        late_rows_of_cold_range = tier.tier == StorageTier.COLD and attached.end + late_row_grace() <= now
        if sealed_and_old or late_rows_of_cold_range:
            due.append((attached.name, attached.start, attached.end))
    return sorted(due, key=lambda item: item[1])


def partitions_tier(*, now: datetime | None = None, limit: int = 8) -> TieringResult | None:
    """The tiering job body: for each enabled policy with a cold age, write its due partitions cold (at most
    `limit` per policy per run; the rest wait for the next run). None when another tiering or retention run
    holds the lock (no double work). A failed partition raises an `archival_failed` alert for the policy.

    Policies (tables) are tiered side by side, TIERING_CONCURRENCY at a time, each in its own session: one
    table's PostgreSQL COPY runs while another's rows are parsed and compressed here. Not when the caller is
    inside a transaction (other sessions could not see what it has not committed): then one after another."""
    # Shares retention's lock (both drop partitions), and so its clean-up of runs a dead worker left RUNNING.
    from archival.services.retention import RETENTION_LOCK, _mark_interrupted_runs

    now = now or timezone.now()
    with advisory_lock(RETENTION_LOCK) as acquired:
        if not acquired:
            return None
        result = TieringResult(runs=[], interrupted=_mark_interrupted_runs())
        policies = list(RetentionPolicy.objects.filter(enabled=True, cold_after_days__isnull=False))
        if connection.in_atomic_block or len(policies) < 2:
            outcomes = [_policy_tier(policy, now=now, limit=limit) for policy in policies]
        else:
            with ThreadPoolExecutor(max_workers=TIERING_CONCURRENCY, thread_name_prefix="tier") as pool:
                outcomes = list(
                    pool.map(lambda policy: _in_own_session(_policy_tier, policy, now=now, limit=limit), policies)
                )
        for runs, deferred in outcomes:
            result.runs.extend(runs)
            result.deferred += deferred
        return result


def _in_own_session(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `function` in this thread's own database session, closed at the end (a pool thread outlives it)."""
    try:
        return function(*args, **kwargs)
    finally:
        connection.close()


def _policy_tier(policy: RetentionPolicy, *, now: datetime, limit: int) -> tuple[list[ArchiveRun], int]:
    """One policy's share of a tiering run: its due partitions, oldest first, stopping at the first failure, and
    its alert raised or resolved. (runs, partitions left for the next run)."""
    due = partitions_due_cold(policy=policy, now=now)
    runs = []
    for partition, start, end in due[:limit]:
        run = partition_tier_to_cold(policy=policy, partition=partition, start=start, end=end, now=now)
        runs.append(run)
        if run.state == ArchiveState.FAILED:
            break
    failed = [run for run in runs if run.state == ArchiveState.FAILED]
    subject = f"{policy.name}: cold tiering"
    if failed:
        alert_raise(
            kind=AlertKind.ARCHIVAL_FAILED,
            subject=subject,
            severity=AlertSeverity.CRITICAL,
            message=f"Cold tiering of {failed[0].partition} failed: {failed[0].error}"[:2000],
            details={"archive_runs": [run.pk for run in failed], "table": policy.table},
        )
    else:
        alert_resolve(kind=AlertKind.ARCHIVAL_FAILED, subject=subject)
    return runs, max(0, len(due) - limit)


def cold_file_delete(*, policy: RetentionPolicy, partition: str, reason: str = ArchiveReason.EXPIRED) -> ArchiveRun:
    """Retention of a cold partition: forget its tier (its range then reads empty, as a dropped partition's
    would), then delete its file. Forgetting first means a crash in between leaves an orphan file, never a
    pointer to a missing one."""
    tier = PartitionTier.objects.filter(partition=partition, tier=StorageTier.COLD).first()
    run = ArchiveRun.objects.create(
        policy=policy,
        policy_name=policy.name,
        action=ArchiveAction.DELETE_COLD,
        reason=reason,
        table=policy.table,
        partition=partition,
        range_start=tier.range_start if tier else None,
        range_end=tier.range_end if tier else None,
        location=tier.location if tier else "",
        rows=tier.rows if tier else None,
        bytes=tier.bytes if tier else None,
        state=ArchiveState.RUNNING,
        started_at=timezone.now(),
    )
    started = time.perf_counter()
    if tier is None:
        return _finish(run, state=ArchiveState.FAILED, started=started, error=f"{partition} is not cold any more")
    partition_tier_forget(partition=partition)
    storage = archive_storage()
    try:
        storage.delete(tier.location)
    except OSError as exc:
        logger.warning("Could not delete cold file %s (now an orphan): %s", tier.location, exc)
        return _finish(run, state=ArchiveState.DROPPED, started=started, error=f"file left behind: {exc}")
    return _finish(run, state=ArchiveState.DROPPED, started=started)


# --- verify and restore ----------------------------------------------------------------------------------


def cold_files_verify(*, now: datetime | None = None, partition: str | None = None) -> list[PartitionTier]:
    """Re-verify every cold file (or one partition's) against what was recorded when it was written. A file
    missing or different is recorded on its PartitionTier row and raises an `archival_failed` alert naming the
    partition and its row count: those rows are unreadable (reads of their range answer an error, never a
    silent gap) until the file is put back. Returns the tiers that failed."""
    now = now or timezone.now()
    tiers = PartitionTier.objects.filter(tier=StorageTier.COLD)
    if partition is not None:
        tiers = tiers.filter(partition=partition)
    failed = []
    for tier in tiers:
        subject = f"cold file {tier.partition}"
        try:
            cold_file_verify(
                location=tier.location,
                rows=tier.rows or 0,
                size=tier.bytes or 0,
                sha256=tier.checksum,
                content_checksum=tier.content_checksum,
            )
        except ArchiveError as exc:
            partition_tier_verified(partition=tier.partition, now=now, error=str(exc))
            alert_raise(
                kind=AlertKind.ARCHIVAL_FAILED,
                subject=subject,
                severity=AlertSeverity.CRITICAL,
                message=f"{tier.rows} row(s) of {tier.table} [{tier.range_start:%Y-%m-%d %H:%M}, "
                f"{tier.range_end:%Y-%m-%d %H:%M}) UTC are unreadable: {exc}"[:2000],
                details={"partition": tier.partition, "rows": tier.rows, "location": tier.location},
            )
            tier.verify_error = str(exc)
            failed.append(tier)
            continue
        partition_tier_verified(partition=tier.partition, now=now)
        alert_resolve(kind=AlertKind.ARCHIVAL_FAILED, subject=subject)
    return failed


def cold_restore(*, partition: str, requested_by: str = "", now: datetime | None = None) -> ArchiveRun:
    """Bring a cold partition back into PostgreSQL: re-create it and COPY its rows from the cold file
    (verified first), mark it hot (the seal job seals it again), and delete the cold file — the tier change
    and the load in one transaction. The rows are identical (tests compare content checksums)."""
    now = now or timezone.now()
    tier = PartitionTier.objects.filter(partition=partition, tier=StorageTier.COLD).first()
    run = ArchiveRun.objects.create(
        action=ArchiveAction.RESTORE,
        reason=ArchiveReason.OPERATOR,
        table=tier.table if tier else "",
        partition=partition,
        range_start=tier.range_start if tier else None,
        range_end=tier.range_end if tier else None,
        location=tier.location if tier else "",
        state=ArchiveState.RUNNING,
        requested_by=requested_by,
        started_at=timezone.now(),
    )
    started = time.perf_counter()
    storage = archive_storage()
    try:
        if tier is None:
            raise ArchiveError(f"{partition} is not a cold partition")
        loaded = _restore_cold_rows(tier, storage=storage)
    except Exception as exc:  # noqa: BLE001 - any failure rolls the restore back and is recorded
        _log_failure(exc, "Restore of cold %s failed; nothing was restored", partition)
        _finish(run, state=ArchiveState.FAILED, started=started, error=f"{type(exc).__name__}: {exc}")
        alert_raise(
            kind=AlertKind.ARCHIVAL_FAILED,
            subject=f"restore {partition}"[:200],
            severity=AlertSeverity.WARNING,
            message=f"Restore of cold {partition} failed: {run.error}"[:2000],
            details={"archive_run": run.pk},
        )
        return run
    _delete_quietly(storage, tier.location)
    return _finish(
        run,
        state=ArchiveState.RESTORED,
        started=started,
        rows=loaded,
        bytes=tier.bytes,
        checksum=tier.checksum,
        content_checksum=tier.content_checksum,
    )


def _restore_cold_rows(tier: PartitionTier, *, storage: Storage) -> int:
    table = _partitioned_table(tier.table)
    partition = UtcTimePartition(start=tier.range_start, size=table.strategy.size)
    if f"{table.table}_{partition.name()}" != tier.partition or partition.end != tier.range_end:
        raise ArchiveError(f"{tier.partition} does not match the table's partition size any more")
    cold_file_verify(
        location=tier.location,
        rows=tier.rows or 0,
        size=tier.bytes or 0,
        sha256=tier.checksum,
        content_checksum=tier.content_checksum,
        storage=storage,
    )
    columns = table_columns(table.table)
    names = [name for name, _ in columns]
    directory = tempfile.mkdtemp(prefix=f"{tier.partition}.restore.", dir=_temporary_directory(storage))
    csv_path = os.path.join(directory, "rows.csv")
    try:
        try:
            source = cold_source(tier, storage=storage)
        except ColdDataUnavailable as exc:
            raise ArchiveError(str(exc)) from exc
        with _duckdb(directory) as engine:
            if isinstance(source, str):
                engine.execute(f"CREATE VIEW cold AS SELECT * FROM read_parquet('{source}')")  # noqa: S608
            else:
                engine.register("cold", source)
            listed = ", ".join(f'"{name}"' for name in names)
            # Doubles are written in their shortest exact form, timestamps without offset (read as UTC below).
            engine.execute(f"COPY (SELECT {listed} FROM cold ORDER BY id) TO '{csv_path}' (FORMAT csv, HEADER false)")  # noqa: S608
        with advisory_lock(PARTITIONS_LOCK_NAME) as acquired:
            if not acquired:
                raise ArchiveError("Partition maintenance is running; try the restore again in a minute")
            with transaction.atomic(), connection.cursor() as cursor:
                pg = cursor.cursor
                _session_for_archiving(pg)
                clashes = [r.name for r in partition_ranges(table.table) if r.overlaps(partition.start, partition.end)]
                if clashes:
                    raise ArchiveError(
                        f"{', '.join(clashes)} already covers this range (late rows?): tier it first, then restore"
                    )
                partition_create(table=table, partition=partition)
                statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                    sql.Identifier(tier.partition), sql.SQL(", ").join(sql.Identifier(name) for name in names)
                )
                with open(csv_path, "rb") as handle, pg.copy(statement) as copy:
                    while chunk := handle.read(CHUNK_BYTES):
                        copy.write(chunk)
                loaded = pg.rowcount
                if loaded != tier.rows:
                    raise ArchiveVerificationError(f"loaded {loaded} rows, the cold file holds {tier.rows}")
                partition_tier_forget(partition=tier.partition)
                pg.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(tier.partition)))
    finally:
        if os.path.exists(csv_path):
            os.unlink(csv_path)
        shutil.rmtree(directory, ignore_errors=True)
    logger.info("Restored %d rows of cold %s", loaded, tier.partition)
    return loaded
