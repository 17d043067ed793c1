"""Reads of counting lines and regions, and of a camera's frame size (what their coordinates are checked against)."""

import re
import uuid
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from cameras.models import Camera
from telemetry.selectors.frames import detection_positions, latest_frame_size
from traffic.models import CountingLine, CountingLineVersion, Region, RegionVersion

__all__ = [
    "DEFAULT_FRAME_SIZE",
    "camera_frame_size",
    "line_list",
    "recent_positions",
    "region_list",
]

DEFAULT_FRAME_SIZE = (1920, 1080)
_NAMED_RESOLUTIONS = {"2160p": (3840, 2160), "4k": (3840, 2160), "1440p": (2560, 1440), "1080p": (1920, 1080),
                      "720p": (1280, 720), "480p": (854, 480), "360p": (640, 360)}  # fmt: skip
_RESOLUTION = re.compile(r"^\s*(\d{2,5})\s*[xX\u00d7]\s*(\d{2,5})\s*$")
MAX_PIXELS = 32767


def _valid(width: object, height: object) -> tuple[int, int] | None:
    if isinstance(width, int) and isinstance(height, int) and 1 <= width <= MAX_PIXELS and 1 <= height <= MAX_PIXELS:
        return width, height
    return None


def camera_frame_size(*, camera: Camera, now: datetime) -> tuple[int, int]:
    """The camera's frame size in pixels: its config (`width`/`height`, or `resolution` as "1920x1080" or
    "1080p"), else its newest frame of the last day, else 1920 x 1080."""
    config = camera.config if isinstance(camera.config, dict) else {}
    size = _valid(config.get("width"), config.get("height"))
    if size:
        return size
    resolution = config.get("resolution")
    if isinstance(resolution, str):
        if resolution.strip().lower() in _NAMED_RESOLUTIONS:
            return _NAMED_RESOLUTIONS[resolution.strip().lower()]
        match = _RESOLUTION.match(resolution)
        if match and (size := _valid(int(match.group(1)), int(match.group(2)))):
            return size
    return latest_frame_size(camera_id=camera.id, since=now - timedelta(days=1)) or DEFAULT_FRAME_SIZE


def recent_positions(*, camera_id: uuid.UUID, now: datetime, limit: int = 3000) -> list[tuple[float, float, str]]:
    """Where the camera saw objects in the last hour (bottom-centres of the boxes in the first frames of each
    minute), for drawing lines and regions well; at most `limit`."""
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return detection_positions(camera_id=camera_id, since=minute - timedelta(hours=1), until=minute)[:limit]


def line_list(*, camera_id: uuid.UUID | None = None, include_closed: bool = False) -> QuerySet[CountingLine]:
    lines = CountingLine.objects.select_related("camera").prefetch_related(
        Prefetch("versions", queryset=CountingLineVersion.objects.order_by("valid_from"))
    )
    if camera_id:
        lines = lines.filter(camera_id=camera_id)
    if not include_closed:
        lines = lines.filter(closed_at__isnull=True)
    return lines


def region_list(*, camera_id: uuid.UUID | None = None, include_closed: bool = False) -> QuerySet[Region]:
    regions = Region.objects.select_related("camera").prefetch_related(
        Prefetch("versions", queryset=RegionVersion.objects.order_by("valid_from"))
    )
    if camera_id:
        regions = regions.filter(camera_id=camera_id)
    if not include_closed:
        regions = regions.filter(closed_at__isnull=True)
    return regions
