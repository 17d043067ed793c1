"""A camera's frames of a time range, with their detections, as NDJSON: the bulk read an integration downloads
(an hour of a camera for an audit or a model's training set), where `GET /api/v1/frames` pages 100 at a time.

Rows come from every tier the range spans, the same ones in the same order (timestamp, id) as the frames API:
attached partitions through one plain SQL query per table (tuples, no ORM model or FrameRow per row), cold files
through DuckDB. The range is read an hour at a time, so memory stays one camera-hour whatever the range.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
from django.db import connection
from psycopg import sql

from telemetry.selectors.cold import (
    ColdDataUnavailable,
    cold_partitions,
    cold_query,
    cold_storage,
    naive_utc,
)
from telemetry.selectors.timeline import DETECTION_FIELDS, FRAME_FIELDS, aware_utc, detection_from_row

__all__ = ["EXPORT_WINDOW", "frames_export_check", "frames_export_ndjson"]

EXPORT_WINDOW = timedelta(hours=1)  # rows held in memory at once: one camera-hour
_encoder = msgspec.json.Encoder()


def frames_export_ndjson(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> Iterator[bytes]:
    """One JSON document a line per frame with since <= timestamp < until, oldest first, each with its
    detections as sent (the frames API's document); yields one chunk per hour of the range."""
    window = since
    while window < until:
        end = min(window + EXPORT_WINDOW, until)
        lines = [_encoder.encode(frame) for frame in _frames(camera_id=camera_id, since=window, until=end)]
        if lines:
            yield b"\n".join(lines) + b"\n"
        window = end


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


def _frames(*, camera_id: uuid.UUID, since: datetime, until: datetime) -> list[dict[str, Any]]:
    detections: dict[datetime, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for row in _rows("detections", DETECTION_FIELDS, camera_id=camera_id, since=since, until=until):
        moment, detection_id, document = detection_from_row(row)
        detections[moment].append((detection_id, document))
    frames = []
    for row in _rows("frame_metadata", FRAME_FIELDS, camera_id=camera_id, since=since, until=until):
        frame = dict(zip(FRAME_FIELDS, row, strict=True))
        frame["camera_id"] = camera_id
        frame["timestamp"] = moment = aware_utc(frame["timestamp"])
        frame["detections"] = [document for _, document in sorted(detections.get(moment, ()), key=_first)]
        frames.append(frame)
    frames.sort(key=lambda frame: (frame["timestamp"], frame["id"]))
    return frames


def _rows(
    table: str, fields: tuple[str, ...], *, camera_id: uuid.UUID, since: datetime, until: datetime
) -> list[tuple]:
    """The rows of `table` for the camera and range from every tier: attached partitions, then cold files."""
    listed = sql.SQL(", ").join(sql.Identifier(name) for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL('SELECT {} FROM {} WHERE camera_id = %s AND "timestamp" >= %s AND "timestamp" < %s').format(
                listed, sql.Identifier(table)
            ),
            [camera_id, since, until],
        )
        rows = cursor.fetchall()
    cold = cold_partitions(table=table, since=since, until=until)
    if cold:
        rows.extend(
            cold_query(
                cold,
                f"SELECT {', '.join(fields)} FROM {{source}} "  # noqa: S608 - fixed column names
                "WHERE camera_id = $1 AND timestamp >= $2 AND timestamp < $3",
                [str(camera_id), naive_utc(since), naive_utc(until)],
            )
        )
    return rows


def _first(item: tuple[int, Any]) -> int:
    return item[0]
