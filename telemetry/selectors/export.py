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

import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

__all__ = [
    "ARROW_CONTENT_TYPE",
    "EXPORT_WINDOW",
    "FRAMES_ARROW_SCHEMA",
    "frames_export_arrow",
    "frames_export_check",
    "frames_export_ndjson",
]

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


# The frames, and separately their detections, each in the file's order: (timestamp, id). A frame is unique by
# (camera, timestamp) (the frames' unique index; ingest refuses a repeat of a cold one), so a camera's detections
# in (timestamp, id) order are its frames' detections frame by frame, each frame's in id order, and a frame's run
# of them is found by its timestamp (_detection_offsets). Neither query needs the other's rows, so DuckDB runs both
# at once, one a core: a join of the two (a frame's number for each detection) took a third of the detections'
# query and kept them one after the other (docs/storage.md).
_FRAMES = """
SELECT frames."timestamp" AS frame_key, {columns}
FROM ({frames}) AS frames
ORDER BY frames."timestamp", frames.id
"""
_DETECTIONS = """
SELECT detections."timestamp" AS frame_key, {columns}
FROM ({detections}) AS detections
ORDER BY detections."timestamp", detections.id
"""
_FRAME_COLUMNS = ", ".join(f'frames."{name}"' for name in FRAME_FIELDS)
_DETECTION_COLUMNS = """
    detections.object_type, detections.confidence,
    [detections.bbox_x1, detections.bbox_y1, detections.bbox_x2, detections.bbox_y2] AS bbox,
    detections.track_id, detections.attributes
"""

# `format=arrow`: the same frames as an Arrow IPC stream, a record batch per hour of the range, detections nested
# in their frame; for an integration that loads them into pandas, Polars or DuckDB (no JSON to parse). A
# detection's `attributes` is the JSON text of what the sender added beyond the normalized fields (NULL when
# nothing), as stored: the NDJSON document is these fields with the attributes merged in.
ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
DETECTION_ARROW_TYPE = pa.struct(
    [
        ("object_type", pa.string()),
        ("confidence", pa.float64()),
        ("bbox", pa.list_(pa.float64())),
        ("track_id", pa.int64()),
        ("attributes", pa.string()),
    ]
)
FRAMES_ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("camera_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("frame_number", pa.int64()),
        ("processing_status", pa.string()),
        ("processing_time_ms", pa.float64()),
        ("width", pa.int16()),
        ("height", pa.int16()),
        ("quality_score", pa.float64()),
        ("detection_count", pa.int16()),
        ("vehicle_count", pa.int16()),
        ("person_count", pa.int16()),
        ("bicycle_count", pa.int16()),
        ("max_confidence", pa.float64()),
        ("detections", pa.list_(DETECTION_ARROW_TYPE)),
    ]
)


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
    for window, end in _windows(since, until):
        frames, detections, offsets = _frames_with_detections(
            camera_id=camera_id,
            since=window,
            until=end,
            frame_columns=f"{_frame_head()} AS head",
            detection_columns=f"{_DETECTION_TEXT} AS text",
        )
        if frames.num_rows:
            listed = pc.binary_join(pa.ListArray.from_arrays(offsets, _strings(detections["text"])), ",")
            lines = pc.binary_join_element_wise(_strings(frames["head"]), listed, "]}\n", "")
            # The lines one after the other are the array's character data: no join, one copy out.
            yield lines.buffers()[2].slice(0, pc.sum(pc.binary_length(lines)).as_py()).to_pybytes()


def frames_export_arrow(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> Iterator[bytes]:
    """The frames of frames_export_ndjson as an Arrow IPC stream (FRAMES_ARROW_SCHEMA, detections nested, in id
    order), a record batch per hour of the range; the first chunk carries the schema, so an empty range is a
    valid stream of no rows."""
    sink = io.BytesIO()
    writer = pa.ipc.new_stream(sink, FRAMES_ARROW_SCHEMA)
    for window, end in _windows(since, until):
        frames, detections, offsets = _frames_with_detections(
            camera_id=camera_id,
            since=window,
            until=end,
            frame_columns=_FRAME_COLUMNS,
            detection_columns=_DETECTION_COLUMNS,
        )
        if frames.num_rows:
            nested = pa.StructArray.from_arrays(
                [detections[field.name].combine_chunks().cast(field.type) for field in DETECTION_ARROW_TYPE],
                fields=list(DETECTION_ARROW_TYPE),
            )
            columns = [
                frames[field.name].cast(field.type) for field in FRAMES_ARROW_SCHEMA if field.name != "detections"
            ]
            writer.write_table(
                pa.Table.from_arrays([*columns, pa.ListArray.from_arrays(offsets, nested)], schema=FRAMES_ARROW_SCHEMA)
            )
        if chunk := _drained(sink):
            yield chunk
    writer.close()
    yield _drained(sink)


def _windows(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    window = since
    while window < until:
        end = min(window + EXPORT_WINDOW, until)
        yield window, end
        window = end


def _drained(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _frames_with_detections(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, frame_columns: str, detection_columns: str
) -> tuple[pa.Table, pa.Table, pa.Array]:
    """The camera's frames of [since, until) from every tier, in (timestamp, id) order, as `frame_columns`
    (SQL over `frames`); their detections, frame by frame in id order, as `detection_columns` (over
    `detections`); and the list offsets of each frame's detections in them. The attached partitions are read
    here (this thread's database connection), then DuckDB's two queries run side by side."""
    frames_cursor, detections_cursor = duckdb_cursor(), duckdb_cursor()
    try:
        frame_values: list[Any] = []  # $1-$3 (camera, since, until) once a cold file is read, then its paths
        frame_rows = _rows(
            frames_cursor, "frame_metadata", FRAME_FIELDS, frame_values, camera_id=camera_id, since=since, until=until
        )
        detection_values: list[Any] = []
        detection_rows = _rows(
            detections_cursor,
            "detections",
            DETECTION_FIELDS,
            detection_values,
            camera_id=camera_id,
            since=since,
            until=until,
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-frames") as pool:
            frames_read = pool.submit(
                lambda: frames_cursor.sql(
                    _FRAMES.format(frames=frame_rows, columns=frame_columns), params=frame_values
                ).to_arrow_table()
            )
            detections = detections_cursor.sql(
                _DETECTIONS.format(detections=detection_rows, columns=detection_columns), params=detection_values
            ).to_arrow_table()
            frames = frames_read.result()
    finally:
        frames_cursor.close()
        detections_cursor.close()
    return (frames, *_detection_offsets(frames["frame_key"].combine_chunks(), detections))


def _detection_offsets(moments: pa.Array, detections: pa.Table) -> tuple[pa.Table, pa.Array]:
    """The detections that belong to a frame (their timestamp is a frame's: a detection without its frame is
    left out), and where each frame's run of them ends: frames and detections both in time order."""
    found = pc.is_in(detections["frame_key"], value_set=moments)
    if not pc.all(found).as_py():
        detections = detections.filter(found)
    runs = pc.run_end_encode(detections["frame_key"].combine_chunks())  # one run a frame that has detections
    ends = pc.take(runs.run_ends, pc.index_in(moments, value_set=runs.values))  # null: a frame without any
    ends = pc.fill_null(pc.fill_null_forward(ends), 0)  # ... ends where the frame before it ends
    return detections, pa.concat_arrays([pa.array([0], pa.int32()), ends.cast(pa.int32())])


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
