"""Changes to stored frames."""

from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from telemetry.selectors.cold import cold_rows_at, naive_utc
from telemetry.services.batches import FrameStatusIn

__all__ = ["FrameStatusResult", "frames_status_update"]


@dataclass(frozen=True)
class FrameStatusResult:
    updated: int
    missing: list[int]  # indexes of the updates that matched no stored frame
    cold: list[int] = field(default_factory=list)  # indexes of those addressing a frame in a (read-only) cold file


STATUS_UPDATE_SQL = """
    UPDATE frame_metadata AS frame
    SET processing_status = u.status,
        processing_time_ms = COALESCE(u.ms, frame.processing_time_ms)
    FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::float8[], %s::int[])
        AS u(camera_id, ts, status, ms, position)
    WHERE frame.camera_id = u.camera_id AND frame."timestamp" = u.ts
      AND frame."timestamp" >= %s AND frame."timestamp" <= %s
    RETURNING u.position
"""


def status_update_params(updates: list[FrameStatusIn]) -> list[Any]:
    timestamps = [update.timestamp for update in updates]
    return [
        [update.camera_id for update in updates],
        timestamps,
        [update.processing_status for update in updates],
        [update.processing_time_ms for update in updates],
        list(range(len(updates))),
        min(timestamps),
        max(timestamps),
    ]


def frames_status_update(*, updates: list[FrameStatusIn]) -> FrameStatusResult:
    """Set the processing status (and, when given, the processing time) of frames addressed by
    (camera_id, timestamp), in one statement and one transaction.

    The batch's smallest and largest timestamps are added as constants so the planner prunes to the
    partitions they fall in (one, for a single update) instead of probing every partition's index. An update
    addressing a frame held in a cold file changes nothing (cold files are read-only: `manage.py archive restore
    --cold` brings its partition back) and is listed in `cold`, not in `missing`.
    """
    if not updates:
        return FrameStatusResult(updated=0, missing=[])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(STATUS_UPDATE_SQL, status_update_params(updates))
        matched = {row[0] for row in cursor.fetchall()}
    unmatched = [index for index in range(len(updates)) if index not in matched]
    # A frame of a cold range is stored, read-only: said apart from frames that do not exist (one PartitionTier
    # query unless an unmatched update falls in a cold range).
    keys = [(updates[index].camera_id, updates[index].timestamp) for index in unmatched]
    in_cold = {(camera_id, moment) for camera_id, moment in cold_rows_at(table="frame_metadata", keys=keys)}
    cold = [i for i in unmatched if (str(updates[i].camera_id), naive_utc(updates[i].timestamp)) in in_cold]
    return FrameStatusResult(updated=len(matched), missing=[i for i in unmatched if i not in cold], cold=cold)
