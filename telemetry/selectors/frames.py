"""Reads of frames. Every query names a camera and a time range, so PostgreSQL prunes partitions."""

import uuid
from datetime import datetime

from django.db.models import QuerySet

from telemetry.models import Detection, FrameMetadata

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
    *, camera_id: uuid.UUID, since: datetime, until: datetime, limit: int
) -> list[tuple[float, float, str]]:
    """Bottom-centre (x, y) and class of up to `limit` of the camera's newest tracked detections in
    [since, until): where objects were seen (index (camera_id, track_id, timestamp) is partial on tracked rows)."""
    rows = (
        Detection.objects.filter(camera_id=camera_id, timestamp__gte=since, timestamp__lt=until)
        .order_by("-timestamp")
        .values_list("bbox_x1", "bbox_x2", "bbox_y2", "object_type")[:limit]
    )
    return [((x1 + x2) / 2, y2, object_type) for x1, x2, y2, object_type in rows]
