"""Export a partition to a verified archive, drop it, and bring it back.

The path for one partition (`partition_retire`) is a single transaction that holds a SHARE lock on the
partition from the first exported row to the DROP: writes to that (old) partition wait, reads and the rest
of the table carry on, and nothing can change between what was exported and what is dropped. In order:

1. COPY (SELECT <columns> FROM <partition>) TO STDOUT, streamed through gzip into a temporary file, hashing
   both the rows (content SHA-256) and the file (SHA-256); saved through the archive storage with a manifest.
2. The file is read back *from the storage* and checked against the manifest: gzip stream intact, file size
   and SHA-256, content SHA-256, row count. Any difference raises ArchiveVerificationError.
3. ALTER TABLE … DETACH PARTITION with a short lock_timeout, retried with backoff (PostgreSQL refuses
   DETACH CONCURRENTLY while a DEFAULT partition exists), then DROP TABLE.

Anything failing (or the worker dying) rolls the whole transaction back: the partition stays attached with
every row, and the next run starts again from step 1. ArchiveRun rows are written outside that transaction
so a failure is recorded.
"""

import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import psycopg
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from archival.choices import ArchiveAction, ArchiveReason, ArchiveState, RetentionMethod
from archival.conf import archival_setting
from archival.models import ArchiveRun, RetentionPolicy
from archival.storage import archive_storage
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise
from its_camera.db.locks import advisory_lock
from its_camera.progress import ProgressCallback, progress_noop
from telemetry.partitioning import PartitionedTable, UtcTimePartition, partitioned_tables
from telemetry.selectors.partitions import partition_ranges
from telemetry.services.partitions import LOCK_NAME as PARTITIONS_LOCK_NAME
from telemetry.services.partitions import partition_create

__all__ = [
    "MANIFEST_FORMAT",
    "ArchiveError",
    "ArchiveVerificationError",
    "Manifest",
    "archive_restore",
    "archive_verify",
    "manifest_load",
    "partition_content_checksum",
    "partition_retire",
    "table_columns",
]

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "its-camera-archive/1"
DATA_FORMAT = "postgresql-copy-text"
CHUNK_BYTES = 1 << 20


class ArchiveError(Exception):
    """An archive operation could not be done; nothing was dropped or half-restored."""


class ArchiveVerificationError(ArchiveError):
    """The archive file read back from storage does not match what was exported."""


@dataclass(frozen=True)
class Manifest:
    table: str
    partition: str
    size: str
    start: datetime
    end: datetime
    rows: int
    bytes: int
    sha256: str
    content_sha256: str
    columns: list[tuple[str, str]]
    data_file: str

    def as_json(self, **extra: Any) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "table": self.table,
            "partition": self.partition,
            "partition_size": self.size,
            "range": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "columns": [{"name": name, "type": type_} for name, type_ in self.columns],
            "data_format": DATA_FORMAT,
            "compression": "gzip",
            "time_zone": "UTC",
            "data_file": self.data_file,
            **extra,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Manifest":
        try:
            if document["format"] != MANIFEST_FORMAT or document["data_format"] != DATA_FORMAT:
                raise ArchiveError(f"Unsupported archive format {document['format']!r} / {document['data_format']!r}")
            return cls(
                table=str(document["table"]),
                partition=str(document["partition"]),
                size=str(document["partition_size"]),
                start=datetime.fromisoformat(document["range"]["start"]),
                end=datetime.fromisoformat(document["range"]["end"]),
                rows=int(document["rows"]),
                bytes=int(document["bytes"]),
                sha256=str(document["sha256"]),
                content_sha256=str(document["content_sha256"]),
                columns=[(str(c["name"]), str(c["type"])) for c in document["columns"]],
                data_file=str(document["data_file"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"Not a valid archive manifest: {type(exc).__name__}: {exc}") from exc


# --- helpers -----------------------------------------------------------------------------------


def table_columns(table: str) -> list[tuple[str, str]]:
    """The columns of `table` in order, with their SQL types, as the manifest records them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """,
            [table],
        )
        return [(name, type_) for name, type_ in cursor.fetchall()]


def _session_for_archiving(pg: psycopg.Cursor) -> None:
    """Settings for this transaction only. Text COPY output depends on TimeZone and DateStyle: pin them so an
    archive and its restore agree byte for byte whatever the server or role defaults are."""
    for name, value in archiving_settings().items():
        pg.execute("SELECT set_config(%s, %s, true)", [name, value])


def archiving_settings() -> dict[str, str]:
    """The session settings of an archiving transaction (and of a second connection reading for it)."""
    return {
        "TimeZone": "UTC",
        "DateStyle": "ISO, MDY",
        "extra_float_digits": "1",
        "statement_timeout": f"{archival_setting('ARCHIVE_STATEMENT_TIMEOUT_MS')}ms",
        "lock_timeout": f"{archival_setting('ARCHIVE_LOCK_TIMEOUT_MS')}ms",
        # Verifying a big file leaves the transaction idle for a while; it must not be killed for that.
        "idle_in_transaction_session_timeout": "0",
        "synchronize_seqscans": "off",
    }


def _partitioned_table(table: str) -> PartitionedTable:
    for candidate in partitioned_tables():
        if candidate.table == table:
            return candidate
    raise ArchiveError(f"{table} is not a partitioned telemetry table")


class _HashingWriter:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class _HashingReader:
    """A read-only file that hashes and counts what is read from it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


class _TemporaryArchive(File):
    """A finished temporary file: FileSystemStorage moves it into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def _temporary_directory(storage: Storage) -> str | None:
    # Same filesystem as the archive root: saving is then a rename, not a second write of the whole file.
    if isinstance(storage, FileSystemStorage):
        directory = os.path.join(storage.location, ".incoming")
        os.makedirs(directory, exist_ok=True)
        return directory
    return None


def _decompressed_chunks(reader: _HashingReader) -> Any:
    """Decompressed blocks of a gzip stream; a truncated or corrupted stream raises ArchiveVerificationError."""
    try:
        with gzip.GzipFile(fileobj=reader, mode="rb") as stream:  # type: ignore[call-overload]
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk
    except (EOFError, OSError, zlib.error) as exc:
        raise ArchiveVerificationError(f"The archive file is not a complete gzip stream: {exc}") from exc


# --- export and verify -------------------------------------------------------------------------


def _export_partition(
    pg: psycopg.Cursor,
    *,
    storage: Storage,
    run: ArchiveRun,
    table: PartitionedTable,
    partition: str,
    start: datetime,
    end: datetime,
) -> tuple[Manifest, str]:
    columns = table_columns(table.table)
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    statement = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(column_list, sql.Identifier(partition))
    content_sha256 = hashlib.sha256()
    counted_rows = 0
    descriptor, temporary_path = tempfile.mkstemp(
        prefix=f"{partition}.", suffix=".copy.gz", dir=_temporary_directory(storage)
    )
    try:
        with os.fdopen(descriptor, "wb") as raw:
            writer = _HashingWriter(raw)
            level = archival_setting("ARCHIVE_COMPRESSION_LEVEL")
            with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=level, mtime=0) as compressed:
                buffer = bytearray()
                with pg.copy(statement) as copy:
                    for data in copy:
                        buffer += data
                        if len(buffer) >= CHUNK_BYTES:
                            content_sha256.update(buffer)
                            counted_rows += buffer.count(b"\n")
                            compressed.write(buffer)
                            buffer.clear()
                content_sha256.update(buffer)
                counted_rows += buffer.count(b"\n")
                compressed.write(buffer)
        rows = pg.rowcount
        if rows != counted_rows:  # text COPY escapes newlines inside values: one line per row, always
            raise ArchiveError(f"COPY reported {rows} rows but {counted_rows} lines were written")
        base = f"{table.table}/{partition}/{partition}.run{run.pk}"
        location = storage.save(f"{base}.copy.gz", _TemporaryArchive(open(temporary_path, "rb")))  # noqa: SIM115
    finally:
        if os.path.exists(temporary_path):
            os.unlink(temporary_path)
    manifest = Manifest(
        table=table.table,
        partition=partition,
        size=table.strategy.size,
        start=start,
        end=end,
        rows=rows,
        bytes=writer.size,
        sha256=writer.sha256.hexdigest(),
        content_sha256=content_sha256.hexdigest(),
        columns=columns,
        data_file=location,
    )
    document = manifest.as_json(archive_run=run.pk, policy=run.policy_name, exported_at=timezone.now().isoformat())
    manifest_location = storage.save(f"{base}.manifest.json", ContentFile(json.dumps(document, indent=2).encode()))
    return manifest, manifest_location


def partition_content_checksum(*, table: str, partition: str) -> str:
    """SHA-256 of a partition's rows as an archive of it would hold them (same columns, text COPY, UTC): equal
    to an archive's content checksum when the partition holds exactly the archived rows in the same order."""
    columns = table_columns(table)
    column_list = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    statement = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(column_list, sql.Identifier(partition))
    digest = hashlib.sha256()
    with transaction.atomic(), connection.cursor() as cursor:
        _session_for_archiving(cursor.cursor)
        with cursor.cursor.copy(statement) as copy:
            for data in copy:
                digest.update(data)
    return digest.hexdigest()


def archive_verify(*, manifest: Manifest, storage: Storage | None = None) -> None:
    """Read the archive file back from storage and check it against its manifest: complete gzip stream,
    size, file SHA-256, content SHA-256 and row count. Raises ArchiveVerificationError on any difference."""
    storage = storage or archive_storage()
    if not storage.exists(manifest.data_file):
        raise ArchiveVerificationError(f"The archive file {manifest.data_file} is missing from storage")
    content_sha256 = hashlib.sha256()
    rows = 0
    with storage.open(manifest.data_file, "rb") as raw:
        reader = _HashingReader(raw)
        for chunk in _decompressed_chunks(reader):
            content_sha256.update(chunk)
            rows += chunk.count(b"\n")
        while reader.read(CHUNK_BYTES):  # anything after the gzip stream still counts for the file hash
            pass
    problems = []
    if reader.size != manifest.bytes:
        problems.append(f"{reader.size} bytes instead of {manifest.bytes}")
    if reader.sha256.hexdigest() != manifest.sha256:
        problems.append("file SHA-256 differs")
    if content_sha256.hexdigest() != manifest.content_sha256:
        problems.append("content SHA-256 differs")
    if rows != manifest.rows:
        problems.append(f"{rows} rows instead of {manifest.rows}")
    if problems:
        raise ArchiveVerificationError(f"{manifest.data_file} fails verification: {'; '.join(problems)}")


def manifest_load(location: str, *, storage: Storage | None = None) -> Manifest:
    """A manifest by its storage name, or by an absolute local path (an archive copied elsewhere)."""
    storage = storage or archive_storage()
    try:
        if os.path.isabs(location):
            with open(location, "rb") as handle:
                return Manifest.from_json(json.loads(handle.read()))
        if not storage.exists(location):
            raise ArchiveError(f"No manifest at {location} in the archive storage")
        with storage.open(location, "rb") as handle:
            return Manifest.from_json(json.loads(handle.read()))
    except (ValueError, OSError) as exc:
        raise ArchiveError(f"Cannot read manifest {location}: {type(exc).__name__}: {exc}") from exc


# --- drop ----------------------------------------------------------------------------------------


def _detach_and_drop(pg: psycopg.Cursor, *, table: str, partition: str) -> None:
    attempts = max(1, archival_setting("ARCHIVE_DETACH_ATTEMPTS"))
    detach = sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(table), sql.Identifier(partition))
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():  # a savepoint: a lock timeout undoes the DETACH only, not the export
                pg.execute(detach)
            break
        except psycopg.errors.LockNotAvailable:
            if attempt == attempts:
                raise ArchiveError(
                    f"Could not lock {table} to detach {partition} after {attempts} attempts (busy); will retry"
                ) from None
            logger.info("DETACH %s: %s busy, attempt %d of %d", partition, table, attempt, attempts)
            time.sleep(min(0.25 * 2**attempt, 5.0))
    pg.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition)))


def _log_failure(exc: BaseException, message: str, *args: object) -> None:
    # An ArchiveError is an expected refusal (verification, busy lock, bad manifest): no traceback needed.
    if isinstance(exc, ArchiveError):
        logger.warning(message + ": %s", *args, exc)
    else:
        logger.exception(message, *args)


def _finish(run: ArchiveRun, *, state: str, started: float, error: str = "", **fields: Any) -> ArchiveRun:
    for name, value in fields.items():
        setattr(run, name, value)
    run.state = state
    run.error = error[:5000]
    run.finished_at = timezone.now()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    run.save()
    return run


def _partition_run_start(
    *,
    policy: RetentionPolicy,
    action: str,
    reason: str,
    table: str,
    partition: str,
    start: datetime,
    end: datetime,
    requested_by: str,
) -> ArchiveRun:
    """The RUNNING ArchiveRun a policy's work on one attached partition starts with (retire and tier alike)."""
    return ArchiveRun.objects.create(
        policy=policy,
        policy_name=policy.name,
        action=action,
        reason=reason,
        table=table,
        partition=partition,
        range_start=start,
        range_end=end,
        state=ArchiveState.RUNNING,
        requested_by=requested_by,
        started_at=timezone.now(),
    )


def _still_attached(table: str, partition: str, start: datetime, end: datetime) -> bool:
    return any(r.name == partition and (r.start, r.end) == (start, end) for r in partition_ranges(table))


def partition_retire(
    *,
    policy: RetentionPolicy,
    partition: str,
    start: datetime,
    end: datetime,
    reason: str = ArchiveReason.EXPIRED,
    estimated_rows: int | None = None,
    requested_by: str = "",
) -> ArchiveRun:
    """Export (export policies), verify, detach and drop one partition of `policy.table`, in one transaction.
    Returns the ArchiveRun; on failure it is FAILED with the error and the partition is untouched."""
    table = _partitioned_table(policy.table)
    exporting = policy.method == RetentionMethod.EXPORT
    run = _partition_run_start(
        policy=policy,
        action=ArchiveAction.EXPORT if exporting else ArchiveAction.DROP,
        reason=reason,
        table=table.table,
        partition=partition,
        start=start,
        end=end,
        requested_by=requested_by,
    )
    started = time.perf_counter()
    storage = archive_storage()
    manifest: Manifest | None = None
    manifest_location = ""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            pg = cursor.cursor
            _session_for_archiving(pg)
            if not _still_attached(table.table, partition, start, end):
                raise ArchiveError(f"{partition} is no longer a partition of {table.table} with the planned range")
            # Writes to this partition wait until we commit: what is dropped is exactly what was exported.
            pg.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(partition)))
            if exporting:
                manifest, manifest_location = _export_partition(
                    pg, storage=storage, run=run, table=table, partition=partition, start=start, end=end
                )
                archive_verify(manifest=manifest, storage=storage)
            _detach_and_drop(pg, table=table.table, partition=partition)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the partition in place and is recorded
        _log_failure(exc, "Archiving %s failed; the partition is left in place", partition)
        return _finish(
            run,
            state=ArchiveState.FAILED,
            started=started,
            error=f"{type(exc).__name__}: {exc}",
            **_manifest_fields(manifest, manifest_location),
        )
    fields = _manifest_fields(manifest, manifest_location) if manifest else {"rows": estimated_rows}
    return _finish(run, state=ArchiveState.DROPPED, started=started, **fields)


def _manifest_fields(manifest: Manifest | None, manifest_location: str) -> dict[str, Any]:
    if manifest is None:
        return {}
    return {
        "rows": manifest.rows,
        "bytes": manifest.bytes,
        "checksum": manifest.sha256,
        "content_checksum": manifest.content_sha256,
        "location": manifest.data_file,
        "manifest_location": manifest_location,
    }


# --- restore -------------------------------------------------------------------------------------


def archive_restore(
    *,
    source: ArchiveRun | None = None,
    manifest_location: str = "",
    requested_by: str = "",
    hold_days: int | None = None,
    run: ArchiveRun | None = None,
    progress: ProgressCallback = progress_noop,
) -> ArchiveRun:
    """Re-create an archived partition and load its rows back with COPY FROM, checking the file against its
    manifest and the loaded row count, all in one transaction (a failure leaves no partition and no rows).

    `source` is the export ArchiveRun, or give `manifest_location` (storage name or local path). `run` is a
    queued restore ArchiveRun to fill in (the admin's restore action); otherwise one is created. The restored
    partition is marked so retention leaves it alone for `hold_days` (ARCHIVE_RESTORE_HOLD_DAYS). `progress` hears
    the bytes of the archive file read so far."""
    storage = archive_storage()
    started = time.perf_counter()
    now = timezone.now()
    if run is None:
        run = ArchiveRun.objects.create(
            action=ArchiveAction.RESTORE,
            reason=ArchiveReason.OPERATOR,
            table=source.table if source else "",
            partition=source.partition if source else "",
            policy=source.policy if source else None,
            policy_name=source.policy_name if source else "",
            restored_from=source,
            state=ArchiveState.RUNNING,
            requested_by=requested_by,
            started_at=now,
        )
    else:
        ArchiveRun.objects.filter(pk=run.pk).update(state=ArchiveState.RUNNING)
    try:
        if source is not None:
            if not source.is_restorable:
                raise ArchiveError(
                    f"Archive run {source.pk} has no archive to restore ({source.action}, {source.state})"
                )
            manifest_location = source.manifest_location
        manifest = manifest_load(manifest_location, storage=storage)
        data_storage: Storage = storage
        if not storage.exists(manifest.data_file) and os.path.isabs(manifest_location):
            # A manifest given by local path: its data file sits beside it.
            data_storage = FileSystemStorage(location=os.path.dirname(manifest_location))
            manifest = _relocated(manifest, os.path.basename(manifest.data_file))
        run.table, run.partition = manifest.table, manifest.partition
        run.range_start, run.range_end = manifest.start, manifest.end
        run.manifest_location = manifest_location
        run.location = manifest.data_file
        loaded = _restore_rows(manifest, storage=data_storage, run=run, now=now, hold_days=hold_days, progress=progress)
    except Exception as exc:  # noqa: BLE001 - any failure rolls the restore back and is recorded
        _log_failure(exc, "Restore of %s failed; nothing was restored", run.partition or manifest_location)
        _finish(run, state=ArchiveState.FAILED, started=started, error=f"{type(exc).__name__}: {exc}")
        alert_raise(
            kind=AlertKind.ARCHIVAL_FAILED,
            subject=f"restore {run.partition or manifest_location}"[:200],
            severity=AlertSeverity.WARNING,
            message=f"Restore of {run.partition or manifest_location} failed: {run.error}"[:2000],
            details={"archive_run": run.pk},
        )
        return run
    return _finish(
        run,
        state=ArchiveState.RESTORED,
        started=started,
        rows=loaded,
        bytes=manifest.bytes,
        checksum=manifest.sha256,
        content_checksum=manifest.content_sha256,
    )


def _relocated(manifest: Manifest, data_file: str) -> Manifest:
    return Manifest(**{**manifest.__dict__, "data_file": data_file})


def _restore_rows(
    manifest: Manifest,
    *,
    storage: Storage,
    run: ArchiveRun,
    now: datetime,
    hold_days: int | None,
    progress: ProgressCallback = progress_noop,
) -> int:
    table = _partitioned_table(manifest.table)
    current_columns = dict(table_columns(table.table))
    for name, type_ in manifest.columns:
        if current_columns.get(name) != type_:
            raise ArchiveError(f"Column {name} {type_} of the archive is not in {table.table} as it is now")
    partition = UtcTimePartition(start=manifest.start, size=manifest.size)
    name = f"{table.table}_{partition.name()}"
    if (partition.start, partition.end, name) != (manifest.start, manifest.end, manifest.partition):
        raise ArchiveError(f"The manifest's range does not match partition {manifest.partition}")
    holding = hold_days if hold_days is not None else archival_setting("ARCHIVE_RESTORE_HOLD_DAYS")
    with advisory_lock(PARTITIONS_LOCK_NAME) as acquired:
        if not acquired:
            raise ArchiveError("Partition maintenance is running; try the restore again in a minute")
        with transaction.atomic(), connection.cursor() as cursor:
            pg = cursor.cursor
            _session_for_archiving(pg)
            clashes = [r.name for r in partition_ranges(table.table) if r.overlaps(partition.start, partition.end)]
            if clashes:
                raise ArchiveError(f"{', '.join(clashes)} already covers this range: detach or drop it first")
            partition_create(table=table, partition=partition)
            column_list = sql.SQL(", ").join(sql.Identifier(c) for c, _ in manifest.columns)
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(name), column_list)
            content_sha256 = hashlib.sha256()
            with storage.open(manifest.data_file, "rb") as raw:
                reader = _HashingReader(raw)
                stage = f"restore {manifest.partition}"
                progress(f"{stage} (loading, bytes of the archive file)", 0, manifest.bytes)
                with pg.copy(statement) as copy:
                    for chunk in _decompressed_chunks(reader):
                        content_sha256.update(chunk)
                        copy.write(chunk)
                        progress(f"{stage} (loading, bytes of the archive file)", reader.size, manifest.bytes)
                while reader.read(CHUNK_BYTES):
                    pass
            loaded = pg.rowcount
            problems = []
            if reader.sha256.hexdigest() != manifest.sha256 or reader.size != manifest.bytes:
                problems.append("the file differs from the one exported")
            if content_sha256.hexdigest() != manifest.content_sha256:
                problems.append("content SHA-256 differs")
            if loaded != manifest.rows:
                problems.append(f"loaded {loaded} rows, the manifest says {manifest.rows}")
            if problems:
                raise ArchiveVerificationError("; ".join(problems))
            hold_until = (now + timedelta(days=holding)).replace(microsecond=0)
            comment = (
                f"its_camera: restored from {manifest.data_file} (archive run {run.restored_from_id or '-'}) "
                f"at {now:%Y-%m-%dT%H:%M:%S}+00:00; retention keeps it until {hold_until.isoformat()}"
            )
            pg.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
            pg.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    logger.info("Restored %d rows into %s", loaded, name)
    return loaded
