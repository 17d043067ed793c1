"""Reads of frames. Every query names a camera and a time range, so PostgreSQL prunes partitions."""

import uuid
from datetime import datetime

import orjson
from django.db import connection
from django.db.models import QuerySet

from telemetry.models import FrameMetadata

__all__ = ["detection_positions", "frame_list", "latest_frame_size"]


def frame_list(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, processing_status: str | None = None
) -> QuerySet[FrameMetadata]:
    """Frames of one camera with since <= timestamp < until, newest first (index (camera_id, timestamp))."""
    frames = FrameMetadata.objects.filter(camera_id=camera_id, timestamp__gte=since, timestamp__lt=until)
    if processing_status:
        frames = frames.filter(processing_status=processing_status)
    return frames.order_by("-timestamp")


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
    minute on frame_metadata and its detections JSONB, so the cost does not grow with the camera's traffic."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT sampled.detections FROM generate_series(%(since)s::timestamptz, %(until)s::timestamptz
                                                           - interval '1 minute', interval '1 minute') AS minute(start)
            CROSS JOIN LATERAL (
                SELECT detections FROM frame_metadata
                WHERE camera_id = %(camera_id)s AND "timestamp" >= minute.start
                  AND "timestamp" < minute.start + interval '1 minute'
                ORDER BY "timestamp" LIMIT %(limit)s
            ) AS sampled
            """,
            {"since": since, "until": until, "camera_id": camera_id, "limit": frames_per_minute},
        )
        # Django has psycopg hand JSONB over as text (JSONField decodes it itself).
        documents = [orjson.loads(row[0]) if isinstance(row[0], str | bytes) else row[0] for row in cursor.fetchall()]
    positions = []
    for detections in documents:
        for detection in detections if isinstance(detections, list) else []:
            bbox = detection.get("bbox") if isinstance(detection, dict) else None
            if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox):
                positions.append(((bbox[0] + bbox[2]) / 2, bbox[3], str(detection.get("object_type", ""))))
    return positions
