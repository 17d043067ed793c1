"""A camera's frames of a time range, with their detections, as NDJSON: the bulk read an integration downloads
(an hour of a camera for an audit or a model's training set), where `GET /api/v1/frames` pages 100 at a time.

No Python object per frame or detection: attached partitions send the camera-hour with COPY, parsed into Arrow
in C (its_camera.db.copy_out); cold files are read by DuckDB; and DuckDB builds every line from both, so the
lines are the same whichever tier a row is in. The range is read an hour at a time (memory: one camera-hour).

A line is the frames API's document: the frame's fields, `timestamp` in UTC with microseconds, and its
detections as sent (telemetry.services.batches.detection_document: the normalized fields, `track_id` when set,
then the attributes the sender added; an `object_type` sent in another case comes at the attributes' place).
"""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from django.db import connection, transaction
from psycopg import sql

from its_camera.db.copy_out import CopyOut, CsvArrowReader
from telemetry.selectors.cold import (
    ColdDataUnavailable,
    cold_partitions,
    cold_relation,
    cold_storage,
    duckdb_cursor,
    naive_utc,
)
from telemetry.selectors.timeline import DETECTION_FIELDS, FRAME_FIELDS

__all__ = ["EXPORT_WINDOW", "frames_export_check", "frames_export_ndjson"]

EXPORT_WINDOW = timedelta(hours=1)  # rows held in memory at once: one camera-hour
COPY_CHUNK_BYTES = 4 << 20

# Lines are built as text: numbers by DuckDB's shortest exact cast (checked finite at ingest), text through to_json
# for its escaping; measured 3x faster than json_object()/to_json() on every value.
_DETECTION = """
    '{'
        || CASE WHEN json_exists(attributes, '$.object_type') THEN ''
                ELSE '"object_type":' || to_json(object_type) || ',' END
        || '"confidence":' || confidence
        || ',"bbox":[' || bbox_x1 || ',' || bbox_y1 || ',' || bbox_x2 || ',' || bbox_y2 || ']'
        || CASE WHEN track_id IS NULL THEN '' ELSE ',"track_id":' || track_id END
        || CASE WHEN attributes IS NULL OR attributes = '{}' THEN '}' ELSE ',' || substr(attributes, 2) END
"""
_TEXT_FIELDS = frozenset({"camera_id", "processing_status"})


def _frame_line() -> str:
    parts = []
    for name in FRAME_FIELDS:
        if name == "timestamp":
            value = """'"' || strftime(frames."timestamp", '%Y-%m-%dT%H:%M:%S.%fZ') || '"'"""
        elif name in _TEXT_FIELDS:
            value = f'to_json(frames."{name}")'
        else:
            value = f"coalesce(frames.\"{name}\"::VARCHAR, 'null')"
        parts.append(f"""'"{name}":' || {value}""")
    detections = """',"detections":[' || coalesce(listed.detections, '') || ']}'"""
    return "'{' || " + " || ',' || ".join(parts) + " || " + detections


_LINES = """
WITH frames AS ({frames}), detections AS ({detections}),
listed AS (SELECT "timestamp", string_agg({detection}, ',' ORDER BY id) AS detections FROM detections GROUP BY 1)
SELECT string_agg({frame}, chr(10) ORDER BY frames."timestamp", frames.id)
FROM frames LEFT JOIN listed ON listed."timestamp" = frames."timestamp"
"""


def frames_export_check(*, since: datetime, until: datetime) -> None:
    """Raise ColdDataUnavailable if a cold file the range needs is missing: before the response starts, when
    the status can still say so (a stream cannot change its 200 half-way)."""
    storage = cold_storage()
    missing = [
        tier.partition
        for table in ("frame_metadata", "detections")
        for tier in cold_partitions(table=table, since=since, until=until)
        if not storage.exists(tier.location)
    ]
    if missing:
        raise ColdDataUnavailable(missing, "missing from the storage")


def frames_export_ndjson(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> Iterator[bytes]:
    """One JSON document a line per frame with since <= timestamp < until, oldest first (timestamp, id), each
    with its detections as sent; yields one chunk per hour of the range."""
    window = since
    while window < until:
        end = min(window + EXPORT_WINDOW, until)
        if lines := _lines(camera_id=camera_id, since=window, until=end):
            yield lines.encode() + b"\n"
        window = end


def _lines(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> str:
    cursor = duckdb_cursor()
    values: list[Any] = []  # $1-$3 (camera, since, until) once a cold file is read, then its paths
    try:
        frames = _rows(cursor, "frame_metadata", FRAME_FIELDS, values, camera_id=camera_id, since=since, until=until)
        detections = _rows(
            cursor, "detections", DETECTION_FIELDS, values, camera_id=camera_id, since=since, until=until
        )
        query = _LINES.format(frames=frames, detections=detections, detection=_DETECTION, frame=_frame_line())
        ((lines,),) = cursor.execute(query, values).fetchall()
        return lines or ""
    finally:
        cursor.close()


def _rows(
    cursor: Any,
    table: str,
    fields: tuple[str, ...],
    values: list[Any],
    *,
    camera_id: uuid.UUID,
    since: datetime,
    until: datetime,
) -> str:
    """SQL for the camera's rows of `table` in the range from every tier: the attached partitions' rows (COPY,
    registered on the cursor as Arrow), and the cold files' (parameters $1-$3: camera, since, until)."""
    attached = f"attached_{table}_{uuid.uuid4().hex}"
    cursor.register(attached, _attached_rows(table, fields, camera_id=camera_id, since=since, until=until))
    listed = ", ".join(f'"{name}"' for name in fields)
    union = f"SELECT {listed} FROM {attached}"  # noqa: S608 - our names
    cold = cold_partitions(table=table, since=since, until=until)
    if cold:
        if not values:
            values.extend([str(camera_id), naive_utc(since), naive_utc(until)])
        relation = cold_relation(cursor, cold, values)
        union += (
            f' UNION ALL SELECT {listed} FROM {relation} WHERE camera_id = $1 AND "timestamp" >= $2'  # noqa: S608
            ' AND "timestamp" < $3'
        )
    return union


def _attached_rows(
    table: str, fields: tuple[str, ...], *, camera_id: uuid.UUID, since: datetime, until: datetime
) -> pa.Table:
    with transaction.atomic(), connection.cursor() as django_cursor:
        pg = django_cursor.cursor
        pg.execute("SELECT set_config('TimeZone', 'UTC', true)")
        pg.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = ANY(%s)",
            [table, list(fields)],
        )
        types = dict(pg.fetchall())
        reader = CsvArrowReader([(name, types[name]) for name in fields])
        statement = sql.SQL(
            'COPY (SELECT {} FROM {} WHERE camera_id = {} AND "timestamp" >= {} AND "timestamp" < {}) '
            "TO STDOUT (FORMAT csv)"
        ).format(
            sql.SQL(", ").join(sql.Identifier(name) for name in fields),
            sql.Identifier(table),
            sql.Literal(camera_id),
            sql.Literal(since),
            sql.Literal(until),
        )
        return pa.concat_tables(
            [reader.schema.empty_table(), *map(reader.parsed, CopyOut(pg, statement, chunk_bytes=COPY_CHUNK_BYTES))]
        )
