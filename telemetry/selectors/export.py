"""A camera's frames of a time range, with their detections, as NDJSON: the bulk read an integration downloads
(an hour of a camera for an audit or a model's training set), where `GET /api/v1/frames` pages 100 at a time.

No Python object per frame or detection: attached partitions send the camera-hour with COPY, parsed into Arrow
in C (its_camera.db.copy_out); cold files are read by DuckDB; DuckDB builds the text of every frame and detection
from both, so the lines are the same whichever tier a row is in, and Arrow puts each frame's detections after it
(list offsets and joins in C). The range is read an hour at a time (memory: one camera-hour).

A line is the frames API's document: the frame's fields, `timestamp` in UTC with microseconds, and its
detections as sent (telemetry.services.batches.detection_document: the normalized fields, `track_id` when set,
then the attributes the sender added; an `object_type` sent in another case comes at the attributes' place).
"""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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

# Lines are built as text by DuckDB: numbers and text by to_json (its JSON writer: a float keeps its `.0`,
# text is escaped), put together with one variadic concat() a detection and a frame. Measured on a camera-hour
# (10,000 frames, 50,000 detections): a `||` chain copies the growing line at every step (230 ms of the frames'
# lines went there), and `x::VARCHAR` formats a double ~3x slower than to_json(x) (50 ms against 16 ms for the
# detections' five); json_object()/to_json() of whole rows cost 3x the text built here.
_DETECTION_TEXT = """
    concat(
        '{',
        CASE WHEN json_exists(attributes, '$.object_type') THEN ''
             ELSE '"object_type":' || to_json(object_type) || ',' END,
        '"confidence":', to_json(confidence),
        ',"bbox":', to_json([bbox_x1, bbox_y1, bbox_x2, bbox_y2]),
        CASE WHEN track_id IS NULL THEN '' ELSE ',"track_id":' || track_id END,
        CASE WHEN attributes IS NULL OR attributes = '{}' THEN '}' ELSE ',' || substr(attributes, 2) END
    )
"""


def _frame_head() -> str:
    """A frame's line up to its detections' list: `{"id":1,...,"detections":[`."""
    parts: list[str] = []
    for name in FRAME_FIELDS:
        if name == "timestamp":
            value = """'"', strftime(frames."timestamp", '%Y-%m-%dT%H:%M:%S.%fZ'), '"'"""
        else:
            value = f"coalesce(to_json(frames.\"{name}\"), 'null')"
        parts.append(f"""'{"," if parts else "{"}"{name}":', {value}""")
    return "concat(" + ", ".join(parts) + """, ',"detections":[')"""


# The frames in the file's order, numbered; then each frame's detections in id order, by its number. Putting them
# together is Arrow's (list offsets, one join): DuckDB's aggregates ordered within a group (string_agg(... ORDER
# BY id) per frame, then per camera-hour) cost more than building the text.
_FRAME_HEADS = """
SELECT frames."timestamp", row_number() OVER (ORDER BY frames."timestamp", frames.id) - 1 AS ordinal,
       {head} AS head
FROM ({frames}) AS frames
ORDER BY frames."timestamp", frames.id
"""
_DETECTION_TEXTS = """
SELECT heads.ordinal, {detection} AS text
FROM ({detections}) AS detections JOIN {heads} AS heads ON heads."timestamp" = detections."timestamp"
ORDER BY heads.ordinal, detections.id
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
            yield lines
        window = end


def _lines(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> bytes:
    """The range's lines, each ending in a newline."""
    cursor = duckdb_cursor()
    try:
        values: list[Any] = []  # $1-$3 (camera, since, until) once a cold file is read, then its paths
        frames = _rows(cursor, "frame_metadata", FRAME_FIELDS, values, camera_id=camera_id, since=since, until=until)
        heads = cursor.sql(_FRAME_HEADS.format(frames=frames, head=_frame_head()), params=values).to_arrow_table()
        if not heads.num_rows:
            return b""
        heads_name = f"heads_{uuid.uuid4().hex}"
        cursor.register(heads_name, heads.select(["timestamp", "ordinal"]))
        values = []
        detections = _rows(
            cursor, "detections", DETECTION_FIELDS, values, camera_id=camera_id, since=since, until=until
        )
        texts = cursor.sql(
            _DETECTION_TEXTS.format(detections=detections, detection=_DETECTION_TEXT, heads=heads_name),
            params=values,
        ).to_arrow_table()
    finally:
        cursor.close()
    # A frame's detections are the texts from where the previous frame's end to where its own end (both in frame
    # order): one run of equal ordinals a frame that has detections.
    runs = pc.run_end_encode(texts["ordinal"].combine_chunks())
    ends = dict(zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True))
    offsets = [0]
    for ordinal in range(heads.num_rows):
        offsets.append(ends.get(ordinal, offsets[-1]))
    listed = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), _strings(texts["text"])), ",")
    lines = pc.binary_join_element_wise(_strings(heads["head"]), listed, "]}\n", "")
    # The lines one after the other are the array's character data: no join, one copy out.
    return lines.buffers()[2].slice(0, pc.sum(pc.binary_length(lines)).as_py()).to_pybytes()


def _strings(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks().cast(pa.string())


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
