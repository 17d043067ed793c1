"""Reads of frames. Every query names a camera and a time range, so PostgreSQL prunes partitions."""

import uuid
from datetime import datetime

from django.db.models import QuerySet

from telemetry.models import FrameMetadata

__all__ = ["frame_list"]


def frame_list(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, processing_status: str | None = None
) -> QuerySet[FrameMetadata]:
    """Frames of one camera with since <= timestamp < until, newest first (index (camera_id, timestamp))."""
    frames = FrameMetadata.objects.filter(camera_id=camera_id, timestamp__gte=since, timestamp__lt=until)
    if processing_status:
        frames = frames.filter(processing_status=processing_status)
    return frames.order_by("-timestamp")
