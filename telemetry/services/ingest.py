"""Write telemetry batches with COPY: frames and their detection rows in one transaction, through Django's
own connection (so `transaction.atomic()` and the test database apply).

Binary COPY with psycopg's `write_row` is the fastest path measured here (docs/telemetry.md): about
1.2 times `psql \\copy` of the same rows as CSV. Values go out exactly as decoded (UUID, aware datetime,
float). A frame's detections are stored once, as detection rows: whatever a detection carries beyond the
normalized columns goes to its `attributes` JSONB as encoded at decode time (NULL when nothing), so reads
give back what was sent (docs/storage.md).
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from django.db import DatabaseError, IntegrityError, InternalError, connection, transaction
from psycopg import Cursor
from psycopg.adapt import Dumper
from psycopg.errors import InternalError_, UniqueViolation
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from cameras.services.cameras import cameras_mark_seen
from its_camera.db.errors import is_unique_violation
from telemetry.choices import BICYCLE_OBJECT_TYPES, PERSON_OBJECT_TYPES, VEHICLE_OBJECT_TYPES
from telemetry.models import HOST_METRICS_CAMERA_ID
from telemetry.selectors.cold import cold_rows_at, naive_utc
from telemetry.services.batches import BatchRejected, FrameBatch, MetricIn, RowError

__all__ = [
    "FrameIngestResult",
    "IdempotencyRequest",
    "MetricIngestResult",
    "frames_ingest",
    "idempotency_keys_purge",
    "idempotent_response",
    "in_camera_order",
    "metrics_ingest",
]

logger = logging.getLogger(__name__)

JSONB_OID = 3802

FRAME_COLUMNS = (
    ("camera_id", "uuid"),
    ("timestamp", "timestamptz"),
    ("frame_number", "int8"),
    ("processing_status", "text"),
    ("processing_time_ms", "float8"),
    ("width", "int2"),
    ("height", "int2"),
    ("quality_score", "float8"),
    ("detection_count", "int2"),
    ("vehicle_count", "int2"),
    ("person_count", "int2"),
    ("bicycle_count", "int2"),
    ("max_confidence", "float8"),
)
DETECTION_COLUMNS = (
    ("camera_id", "uuid"),
    ("timestamp", "timestamptz"),
    ("object_type", "text"),
    ("confidence", "float8"),
    ("bbox_x1", "float8"),
    ("bbox_y1", "float8"),
    ("bbox_x2", "float8"),
    ("bbox_y2", "float8"),
    ("track_id", "int8"),
    ("attributes", "jsonb"),
)


def _copy_statement(table: str, columns: Iterable[tuple[str, str]]) -> str:
    names = ", ".join(f'"{name}"' for name, _ in columns)
    return f'COPY "{table}" ({names}) FROM STDIN (FORMAT BINARY)'


FRAMES_COPY = _copy_statement("frame_metadata", FRAME_COLUMNS)
DETECTIONS_COPY = _copy_statement("detections", DETECTION_COLUMNS)
METRIC_COLUMNS = (
    ("camera_id", "uuid"),
    ("timestamp", "timestamptz"),
    ("name", "text"),
    ("value", "float8"),
    ("labels", "jsonb"),
    ("alert_level", "text"),
)
METRICS_COPY = _copy_statement("system_metrics", METRIC_COLUMNS)
# The natural key (migration 0007) makes a retried batch write nothing. COPY has no ON CONFLICT, and an INSERT
# with ON CONFLICT ran at a quarter of COPY's rate (bench/metrics_ingest.py), so COPY stays the path of a new
# batch and this statement is the fallback when COPY hits the key: one statement from unnest(arrays), no
# staging table (a temporary table per batch churns the catalog, and is session state that PgBouncer's
# transaction pooling does not keep).
METRICS_INSERT = (
    'INSERT INTO system_metrics (camera_id, "timestamp", name, value, labels, alert_level) '
    "SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::float8[], %s::jsonb[], %s::text[]) "
    'ON CONFLICT (camera_id, name, "timestamp", md5(labels::text)) DO NOTHING '
    # Counted from RETURNING, not rowcount: Citus reports the rows an INSERT … SELECT processed, not inserted.
    "RETURNING 1"
)


class RawJsonbBinaryDumper(Dumper):
    """Dumps bytes that already hold JSON into binary jsonb (a version byte, then the text): the JSON
    received goes to the column without being parsed into Python objects and encoded again."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + bytes(obj)


@dataclass(frozen=True)
class IdempotencyRequest:
    """An `Idempotency-Key` sent by `api_key_id` to `endpoint`, with the digest of the request body."""

    api_key_id: int
    endpoint: str
    key: str
    request_sha256: str

    @classmethod
    def for_body(cls, *, api_key_id: int, endpoint: str, key: str, body: bytes) -> "IdempotencyRequest":
        return cls(api_key_id=api_key_id, endpoint=endpoint, key=key, request_sha256=hashlib.sha256(body).hexdigest())


@dataclass(frozen=True)
class FrameIngestResult:
    frames: int
    detections: int
    cameras: int
    replayed: bool = False

    def as_response(self) -> dict[str, int]:
        return {"frames": self.frames, "detections": self.detections, "cameras": self.cameras}


@dataclass(frozen=True)
class MetricIngestResult:
    metrics: int  # rows written
    cameras: int
    duplicates: int = 0  # rows whose sample was already stored (a retried batch), written nothing
    replayed: bool = False

    def as_response(self) -> dict[str, int]:
        return {"metrics": self.metrics, "cameras": self.cameras, "duplicates": self.duplicates}


def idempotent_response(*, request: IdempotencyRequest) -> dict | None:
    """The stored answer to an earlier request with the same key, or None. Raises BatchRejected (422)
    when the key was used for a different body."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_sha256, response FROM telemetry_idempotency_keys "
            "WHERE api_key_id = %s AND endpoint = %s AND key = %s",
            [request.api_key_id, request.endpoint, request.key],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _replay(request, stored_sha256=row[0], response=row[1])


def _replay(request: IdempotencyRequest, *, stored_sha256: str, response: Any) -> dict:
    if stored_sha256 != request.request_sha256:
        raise BatchRejected(422, "This Idempotency-Key was already used with a different request body.")
    if isinstance(response, str):  # Django registers a text loader for jsonb on its connections
        response = json.loads(response)
    return dict(response)


def _idempotency_claim(cursor: Cursor, request: IdempotencyRequest) -> dict | None:
    """Inside the batch's transaction, claim the key. Returns None when this transaction owns it, or the
    first answer when another request with this key committed first. A concurrent request with the same
    key waits here on the unique index until the first one commits or rolls back, so two retries racing
    each other never both write."""
    cursor.execute(
        "INSERT INTO telemetry_idempotency_keys (api_key_id, endpoint, key, request_sha256, response, created_at) "
        "VALUES (%s, %s, %s, %s, 'null'::jsonb, now()) "
        "ON CONFLICT (api_key_id, endpoint, key) DO NOTHING RETURNING id",
        [request.api_key_id, request.endpoint, request.key, request.request_sha256],
    )
    if cursor.fetchone() is not None:
        return None
    cursor.execute(
        "SELECT request_sha256, response FROM telemetry_idempotency_keys "
        "WHERE api_key_id = %s AND endpoint = %s AND key = %s",
        [request.api_key_id, request.endpoint, request.key],
    )
    stored_sha256, response = cursor.fetchone()  # type: ignore[misc]
    return _replay(request, stored_sha256=stored_sha256, response=response)


def _idempotency_store(cursor: Cursor, request: IdempotencyRequest, response: dict) -> None:
    cursor.execute(
        "UPDATE telemetry_idempotency_keys SET response = %s WHERE api_key_id = %s AND endpoint = %s AND key = %s",
        [Jsonb(response), request.api_key_id, request.endpoint, request.key],
    )


def idempotency_keys_purge(*, older_than: datetime, batch_size: int = 10_000) -> int:
    """Delete idempotency keys created before `older_than`, `batch_size` rows per statement so no
    transaction holds many row locks. A retry after that no longer replays (it is a new request, and a
    frame already stored makes it a 409). Returns the number of keys deleted."""
    deleted = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM telemetry_idempotency_keys WHERE id IN "
                "(SELECT id FROM telemetry_idempotency_keys WHERE created_at < %s ORDER BY id LIMIT %s)",
                [older_than, batch_size],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < batch_size:
                return deleted


def _unknown_cameras(camera_ids: list[uuid.UUID | None]) -> set[uuid.UUID]:
    wanted = {camera_id for camera_id in camera_ids if camera_id is not None}
    if not wanted:
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM cameras WHERE id = ANY(%s)", [list(wanted)])
        known = {row[0] for row in cursor.fetchall()}
    return wanted - known


def _reject_unknown_cameras(camera_ids: list[uuid.UUID | None]) -> None:
    unknown = _unknown_cameras(camera_ids)
    if not unknown:
        return
    errors = []
    for index, camera_id in enumerate(camera_ids):
        if camera_id in unknown:
            errors.append(RowError(index, "camera_id", f"Unknown camera {camera_id}."))
            unknown.discard(camera_id)  # one error per unknown camera is enough to act on
    raise BatchRejected(422, "Invalid batch", errors)


def _conflict(exc: DatabaseError) -> BatchRejected:
    detail = getattr(getattr(exc.__cause__, "diag", None), "message_detail", None) or str(exc)
    return _conflict_rejection(detail)


def _conflict_rejection(detail: str) -> BatchRejected:
    return BatchRejected(409, f"The batch conflicts with stored data: {detail}")


def _postgres_timestamp(moment: datetime) -> str:
    """A timestamp as PostgreSQL writes it in a UTC session ('2026-11-10 09:00:00.25+00')."""
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction}+00"


def _reject_cold_duplicates(batch: FrameBatch) -> None:
    """A frame whose (camera, timestamp) a cold file already holds is a 409 with the same detail PostgreSQL's
    unique index gives on an attached partition. Runs after the COPY, in the batch's transaction: a tiering run
    merging this range's late rows waits for the commit (its SHARE lock), or finished before and its file is
    the one read here, so no duplicate slips between the two. A cold file that cannot be read raises
    ColdDataUnavailable (the API's 503 naming it): a late frame is never stored unchecked."""
    keys = [(frame.camera_id, frame.timestamp) for frame in batch.frames]
    stored = {(camera_id, moment) for camera_id, moment in cold_rows_at(table="frame_metadata", keys=keys)}
    for camera_id, moment in keys:
        if (str(camera_id), naive_utc(moment)) in stored:
            raise _conflict_rejection(
                f'Key (camera_id, "timestamp")=({camera_id}, {_postgres_timestamp(moment)}) already exists.'
            )


def _without_cold_samples(rows: list[tuple]) -> list[tuple]:
    """The metric rows whose sample (camera, name, timestamp, labels) no cold file holds: a retried batch of a cold
    range writes nothing, as on an attached partition (ON CONFLICT DO NOTHING)."""
    keys = [(row[0], row[1]) for row in rows]
    stored = cold_rows_at(table="system_metrics", keys=keys, columns=("name", "labels"))
    if not stored:
        return rows
    samples = {(camera_id, moment, name, _canonical(labels)) for camera_id, moment, name, labels in stored}
    return [row for row in rows if (str(row[0]), naive_utc(row[1]), row[2], _canonical(row[4])) not in samples]


def _canonical(labels: str | bytes) -> str:
    return json.dumps(json.loads(labels), sort_keys=True)


def _latest_per_camera(rows: Iterable[tuple[uuid.UUID | None, datetime]]) -> dict[uuid.UUID, datetime]:
    latest: dict[uuid.UUID, datetime] = {}
    for camera_id, moment in rows:
        if camera_id is not None and (camera_id not in latest or moment > latest[camera_id]):
            latest[camera_id] = moment
    return latest


FrameSummary = tuple[int, int, int, float | None]  # vehicles, persons, bicycles, max confidence


def _detection_rows(batch: FrameBatch, summaries: list[FrameSummary]) -> Iterator[tuple]:
    """COPY rows for the batch's detections, appending each frame's summary to `summaries` on the way.

    A generator: rows are built while PostgreSQL inserts the ones already sent (client and server
    work overlap on two cores), and each row tuple is freed as soon as it is written, so a batch's
    10,000 detections never sit in memory as 10,000 live tuples feeding the cyclic GC."""
    vehicles, persons, bicycles = VEHICLE_OBJECT_TYPES, PERSON_OBJECT_TYPES, BICYCLE_OBJECT_TYPES
    add_summary = summaries.append
    no_attributes: list[bytes | None] = []
    all_attributes = batch.attributes or [None] * len(batch.frames)
    for frame, detections, frame_attributes in zip(batch.frames, batch.detections, all_attributes, strict=True):
        camera_id, moment = frame.camera_id, frame.timestamp
        vehicle_count = person_count = bicycle_count = 0
        max_confidence = None
        if frame_attributes is None and len(no_attributes) < len(detections):
            no_attributes = [None] * len(detections)
        for detection, attributes in zip(detections, frame_attributes or no_attributes, strict=False):
            object_type = detection.object_type.lower()
            if object_type in vehicles:
                vehicle_count += 1
            elif object_type in persons:
                person_count += 1
            elif object_type in bicycles:
                bicycle_count += 1
            confidence = detection.confidence
            if max_confidence is None or confidence > max_confidence:
                max_confidence = confidence
            x1, y1, x2, y2 = detection.bbox
            yield (camera_id, moment, object_type, confidence, x1, y1, x2, y2, detection.track_id, attributes)
        add_summary((vehicle_count, person_count, bicycle_count, max_confidence))


def _frame_rows(batch: FrameBatch, summaries: list[FrameSummary]) -> Iterator[tuple]:
    """COPY rows for the batch's frames, with the summary fields `_detection_rows` derived."""
    for frame, detections, (vehicles, persons, bicycles, max_confidence) in zip(
        batch.frames, batch.detections, summaries, strict=True
    ):
        yield (
            frame.camera_id,
            frame.timestamp,
            frame.frame_number,
            frame.processing_status,
            frame.processing_time_ms,
            frame.width,
            frame.height,
            frame.quality_score,
            len(detections),
            vehicles,
            persons,
            bicycles,
            max_confidence,
        )


def in_camera_order(batch: FrameBatch) -> FrameBatch:
    """The batch with its frames grouped by camera, each camera's in time order (a stable sort: a camera's frames
    of equal timestamp keep the order sent), their detections and attributes moved with them.

    Every B-tree of a partition leads with camera_id, so frames arriving interleaved across cameras write each
    index at as many places as the batch has cameras, one row at a time: written grouped, a camera's rows go into
    the same leaf pages one after the other, and lie together in the heap, so a camera-hour reads fewer pages.
    Ingest into a 1 M-frame partition ran ~17 % faster (docs/storage.md). A batch from one camera is already in
    order, and sorting it costs a pass."""
    order = sorted(range(len(batch.frames)), key=lambda i: (batch.frames[i].camera_id.int, batch.frames[i].timestamp))
    if all(position == index for position, index in enumerate(order)):
        return batch
    return FrameBatch(
        frames=[batch.frames[i] for i in order],
        detections=[batch.detections[i] for i in order],
        attributes=None if batch.attributes is None else [batch.attributes[i] for i in order],
    )


def frame_copy_rows(batch: FrameBatch) -> tuple[list[tuple], list[tuple]]:
    """Every COPY row of a batch, built at once (benchmarks compare raw COPY of exactly these rows)."""
    summaries: list[FrameSummary] = []
    detection_rows = list(_detection_rows(batch, summaries))
    return list(_frame_rows(batch, summaries)), detection_rows


def _copy(cursor: Cursor, statement: str, columns: tuple[tuple[str, str], ...], rows: Iterable[tuple]) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types([type_name for _, type_name in columns])
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def _raw_cursor(django_cursor: Any) -> Cursor:
    cursor: Cursor = django_cursor.cursor
    cursor.adapters.register_dumper(None, RawJsonbBinaryDumper)
    return cursor


def frames_ingest(*, batch: FrameBatch, idempotency: IdempotencyRequest | None = None) -> FrameIngestResult:
    """Write a validated batch of frames and their detections, all or nothing.

    Checks the batch's cameras with one query (422 naming the row of each unknown camera), then in one
    transaction: claims the idempotency key (a retry returns the first answer and writes nothing), COPYs,
    grouped by camera (in_camera_order), the detection rows (extra keys into `attributes`) and the frames
    (summary fields derived from the detections), stores the answer with the key, and moves each camera's
    last_seen_at forward once (not once per frame). A frame whose timestamp has no partition lands in the
    DEFAULT partition.

    Raises BatchRejected (422 unknown camera or key reused with another body, 409 frame already stored, in any
    tier: a late frame of a cold range is checked against its file; 503 when that file cannot be read).
    """
    _reject_unknown_cameras([frame.camera_id for frame in batch.frames])
    batch = in_camera_order(batch)
    result = FrameIngestResult(
        frames=len(batch.frames),
        detections=batch.detection_count,
        cameras=len({frame.camera_id for frame in batch.frames}),
    )
    try:
        with transaction.atomic(), connection.cursor() as django_cursor, connection.wrap_database_errors:
            cursor = _raw_cursor(django_cursor)
            if idempotency is not None:
                first_answer = _idempotency_claim(cursor, idempotency)
                if first_answer is not None:
                    return FrameIngestResult(**first_answer, replayed=True)
            # Detections first: their rows stream straight from the decoded batch, and the frames'
            # summary fields are collected on the way.
            summaries: list[FrameSummary] = []
            if result.detections:
                _copy(cursor, DETECTIONS_COPY, DETECTION_COLUMNS, _detection_rows(batch, summaries))
            else:
                summaries = [(0, 0, 0, None)] * len(batch.frames)
            _copy(cursor, FRAMES_COPY, FRAME_COLUMNS, _frame_rows(batch, summaries))
            _reject_cold_duplicates(batch)
            if idempotency is not None:
                _idempotency_store(cursor, idempotency, result.as_response())
            # Last, so the camera rows stay locked only while the transaction commits, and in the same
            # transaction, so the batch costs one WAL flush, not two.
            cameras_mark_seen(last_seen=_latest_per_camera((f.camera_id, f.timestamp) for f in batch.frames))
    except (IntegrityError, InternalError) as exc:
        if not is_unique_violation(exc):
            raise
        raise _conflict(exc) from None
    return result


def _metrics_write(cursor: Cursor, rows: list[tuple]) -> int:
    """COPY the rows; when one of them is a sample already stored, insert only the new ones instead. Returns
    the number of rows written. Runs inside the batch's transaction."""
    try:
        with transaction.atomic():  # a savepoint: a duplicate undoes the COPY only, not the idempotency claim
            _copy(cursor, METRICS_COPY, METRIC_COLUMNS, rows)
        return len(rows)
    except (UniqueViolation, InternalError_) as exc:
        # Citus reports a duplicate met by a COPY as XX000, not 23505 (its_camera.db.errors).
        if not is_unique_violation(exc):
            raise
        # system_metrics' only other unique key is (camera_id, id, timestamp), with an identity: this is the
        # natural key.
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[4] = [labels.decode() for labels in columns[4]]
        cursor.execute(METRICS_INSERT, columns)
        return len(cursor.fetchall())


def metrics_ingest(*, metrics: list[MetricIn], idempotency: IdempotencyRequest | None = None) -> MetricIngestResult:
    """Write a validated batch of system metrics, all or nothing (see frames_ingest).

    A sample is identified by (camera, name, timestamp, labels): one already stored (the same batch retried
    without an Idempotency-Key, or a row repeated within the batch) is skipped, not stored twice, and counted
    in `duplicates`; the first value written for a sample stays."""
    _reject_unknown_cameras([metric.camera_id for metric in metrics])
    encode = msgspec.json.encode
    rows = [
        (
            metric.camera_id or HOST_METRICS_CAMERA_ID,
            metric.timestamp,
            metric.name,
            metric.value,
            encode(metric.labels),
            metric.alert_level,
        )
        for metric in metrics
    ]
    cameras = len({metric.camera_id for metric in metrics if metric.camera_id is not None})
    try:
        with transaction.atomic(), connection.cursor() as django_cursor, connection.wrap_database_errors:
            cursor = _raw_cursor(django_cursor)
            if idempotency is not None:
                first_answer = _idempotency_claim(cursor, idempotency)
                if first_answer is not None:
                    return MetricIngestResult(**first_answer, replayed=True)
            written = _metrics_write(cursor, _without_cold_samples(rows))
            result = MetricIngestResult(metrics=written, cameras=cameras, duplicates=len(metrics) - written)
            if idempotency is not None:
                _idempotency_store(cursor, idempotency, result.as_response())
            cameras_mark_seen(last_seen=_latest_per_camera((m.camera_id, m.timestamp) for m in metrics))
    except (IntegrityError, InternalError) as exc:
        if not is_unique_violation(exc):
            raise
        raise _conflict(exc) from None
    return result
