"""Reads of frames. Every query names a camera and a time range, so PostgreSQL prunes partitions and DuckDB
reads only the cold files (and row groups) of that range."""

import uuid
from datetime import datetime

from django.db import connection

from telemetry.models import FrameMetadata
from telemetry.selectors.timeline import FrameTimeline

__all__ = ["detection_positions", "frame_list", "latest_frame_size"]


def frame_list(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, processing_status: str | None = None
) -> FrameTimeline:
    """Frames of one camera with since <= timestamp < until, newest first, with their detections, from every
    storage tier the range spans (index (camera_id, timestamp) on attached partitions)."""
    return FrameTimeline(camera_id=camera_id, since=since, until=until, processing_status=processing_status)


def latest_frame_size(*, camera_id: uuid.UUID, since: datetime) -> tuple[int, int] | None:
    """(width, height) of the camera's newest frame since `since` that carries them, or None."""
    row = (
        FrameMetadata.objects.filter(
            camera_id=camera_id, timestamp__gte=since, width__isnull=False, height__isnull=False
        )
        .order_by("-timestamp")
        .values_list("width", "height")
        .first()
    )
    return (int(row[0]), int(row[1])) if row else None


def detection_positions(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, frames_per_minute: int = 5
) -> list[tuple[float, float, str]]:
    """Bottom-centre (x, y) and class of the detections in the first `frames_per_minute` frames of each minute of
    [since, until): where the camera saw objects, spread over the range. One (camera_id, timestamp) index probe a
    minute on frame_metadata, and one on detections per sampled frame, so the cost does not grow with the
    camera's traffic (hot and sealed partitions; a form drawing the last hour never reaches cold ones)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (detection.bbox_x1 + detection.bbox_x2) / 2, detection.bbox_y2, detection.object_type
            FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz - interval '1 minute',
                                 interval '1 minute') AS minute(start)
            CROSS JOIN LATERAL (
                SELECT "timestamp" FROM frame_metadata
                WHERE camera_id = %(camera_id)s AND "timestamp" >= minute.start
                  AND "timestamp" < minute.start + interval '1 minute'
                ORDER BY "timestamp" LIMIT %(limit)s
            ) AS sampled
            JOIN detections AS detection
              ON detection.camera_id = %(camera_id)s AND detection."timestamp" = sampled."timestamp"
            """,
            {"since": since, "until": until, "camera_id": camera_id, "limit": frames_per_minute},
        )
        return [(float(x), float(y), str(kind)) for x, y, kind in cursor.fetchall()]
