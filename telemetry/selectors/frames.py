"""Reads of frames. Every query names a camera and a time range, so PostgreSQL prunes partitions and DuckDB
reads only the cold files (and row groups) of that range."""

import uuid
from datetime import datetime

from telemetry.selectors.timeline import FrameTimeline

__all__ = ["frame_list"]


def frame_list(
    *, camera_id: uuid.UUID, since: datetime, until: datetime, processing_status: str | None = None
) -> FrameTimeline:
    """Frames of one camera with since <= timestamp < until, newest first, with their detections, from every
    storage tier the range spans (index (camera_id, timestamp) on attached partitions)."""
    return FrameTimeline(camera_id=camera_id, since=since, until=until, processing_status=processing_status)
