"""Create, edit and close counting lines and regions. An edit of the geometry never rewrites history: it closes
the version in force at `valid_from` (default: now) and opens a new one, so counts before the edit stay as they
were counted and `manage.py rollups rebuild` of an older range recounts it with the geometry of that time.

Every input is checked here (inside the frame, not degenerate, not self-intersecting, limits per camera) and a
bad one raises ValidationError naming the field; nothing is written then.
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cameras.models import Camera
from traffic.choices import InSide
from traffic.conf import MAX_POLYGON_VERTICES, MIN_POLYGON_VERTICES, traffic_setting
from traffic.geometry import Point, polygon_area, polygon_literal, polygon_self_intersects
from traffic.models import CountingLine, CountingLineVersion, Region, RegionVersion
from traffic.selectors.definitions import camera_frame_size

__all__ = [
    "line_check",
    "line_close",
    "line_create",
    "line_update",
    "region_check",
    "region_close",
    "region_create",
    "region_update",
]

MIN_LINE_LENGTH_PIXELS = 1.0
MIN_REGION_AREA_PIXELS = 1.0
MAX_NAME_LENGTH = 100


def _name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise ValidationError({"name": "A name is required."})
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError({"name": f"At most {MAX_NAME_LENGTH} characters."})
    return cleaned


def _points(field: str, raw: Any, size: tuple[int, int], *, minimum: int, maximum: int) -> list[Point]:
    if not isinstance(raw, list | tuple) or not minimum <= len(raw) <= maximum:
        raise ValidationError({field: f"Give {minimum} to {maximum} points [x, y]." if minimum != maximum
                               else f"Give exactly {minimum} points [x, y]."})  # fmt: skip
    width, height = size
    points: list[Point] = []
    for index, point in enumerate(raw):
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise ValidationError({field: f"Point {index + 1}: give [x, y]."})
        x, y = point
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
            raise ValidationError({field: f"Point {index + 1}: x and y must be finite numbers."})
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValidationError({field: f"Point {index + 1} ({x:g}, {y:g}) is outside the {width} x {height} frame."})
        points.append((float(x), float(y)))
    return points


def _line_points(raw: Any, size: tuple[int, int]) -> list[Point]:
    points = _points("points", raw, size, minimum=2, maximum=2)
    (x1, y1), (x2, y2) = points
    if math.hypot(x2 - x1, y2 - y1) < MIN_LINE_LENGTH_PIXELS:
        raise ValidationError({"points": "The line has zero length: give two different points."})
    return points


def _region_points(raw: Any, size: tuple[int, int]) -> list[Point]:
    points = _points("points", raw, size, minimum=MIN_POLYGON_VERTICES, maximum=MAX_POLYGON_VERTICES)
    if len(set(points)) != len(points):
        raise ValidationError({"points": "A vertex is repeated."})
    if polygon_area(points) < MIN_REGION_AREA_PIXELS:
        raise ValidationError({"points": "The polygon has no area (its points are on one line)."})
    if polygon_self_intersects(points):
        raise ValidationError({"points": "The polygon's edges cross each other (self-intersecting)."})
    return points


def _in_side(value: str) -> str:
    if value not in InSide.values:
        raise ValidationError({"in_side": f"Choose one of: {', '.join(InSide.values)}."})
    return value


def _camera(camera: Camera | None) -> Camera:
    if camera is None:
        raise ValidationError({"camera": "Unknown camera."})
    return camera


EARLIEST_VALID_FROM = datetime(2000, 1, 1, tzinfo=UTC)
MAX_VALID_FROM_AHEAD = timedelta(days=366)


def _valid_from(valid_from: datetime | None, now: datetime, after: datetime | None = None) -> datetime:
    moment = valid_from or now
    if moment.tzinfo is None:
        raise ValidationError({"valid_from": "Give a time zone."})
    if not EARLIEST_VALID_FROM <= moment <= now + MAX_VALID_FROM_AHEAD:
        raise ValidationError({"valid_from": "Must be after 2000-01-01 and at most a year ahead."})
    if after is not None and moment <= after:
        raise ValidationError({"valid_from": f"Must be after the current version's start ({after.isoformat()})."})
    return moment


def line_check(
    *, camera: Camera | None, name: str, points: Any, in_side: str, now: datetime, line: CountingLine | None = None
) -> None:
    """Raise ValidationError (naming the field) if these values would be refused; writes nothing. The admin form
    calls it so an operator sees the error on the field."""
    camera = _camera(camera)
    cleaned = _name(name)
    _line_points(points, camera_frame_size(camera=camera, now=now))
    _in_side(in_side)
    same_name = CountingLine.objects.filter(camera=camera, name=cleaned)
    if line is not None:
        same_name = same_name.exclude(pk=line.pk)
    if same_name.exists():
        raise ValidationError({"name": "This camera already has a line with this name."})


def region_check(*, camera: Camera | None, name: str, points: Any, now: datetime, region: Region | None = None) -> None:
    """As line_check, for a region."""
    camera = _camera(camera)
    cleaned = _name(name)
    _region_points(points, camera_frame_size(camera=camera, now=now))
    same_name = Region.objects.filter(camera=camera, name=cleaned)
    if region is not None:
        same_name = same_name.exclude(pk=region.pk)
    if same_name.exists():
        raise ValidationError({"name": "This camera already has a region with this name."})


@transaction.atomic
def line_create(
    *,
    camera: Camera | None,
    name: str,
    points: Sequence[Sequence[float]],
    in_side: str,
    now: datetime,
    valid_from: datetime | None = None,
) -> CountingLine:
    """A new counting line, counting from `valid_from` (default `now`; earlier = a `rollups rebuild` of that range
    counts it)."""
    camera = _camera(camera)
    name = _name(name)
    size = camera_frame_size(camera=camera, now=now)
    geometry = _line_points(points, size)
    in_side = _in_side(in_side)
    start = _valid_from(valid_from, now)
    Camera.objects.select_for_update().filter(pk=camera.pk).first()  # serialises the per-camera limit check
    if CountingLine.objects.filter(camera=camera, closed_at__isnull=True).count() >= traffic_setting(
        "TRAFFIC_MAX_LINES_PER_CAMERA"
    ):
        raise ValidationError(
            {"camera": f"This camera already has {traffic_setting('TRAFFIC_MAX_LINES_PER_CAMERA')} lines."}
        )
    if CountingLine.objects.filter(camera=camera, name=name).exists():
        raise ValidationError({"name": "This camera already has a line with this name."})
    line = CountingLine.objects.create(camera=camera, name=name, created_at=now)
    (x1, y1), (x2, y2) = geometry
    CountingLineVersion.objects.create(
        line=line, valid_from=start, x1=x1, y1=y1, x2=x2, y2=y2, in_side=in_side,
        frame_width=size[0], frame_height=size[1],
    )  # fmt: skip
    return line


def _rename(definition: CountingLine | Region, name: str, *, kind: str) -> None:
    """Rename a line or region; names are unique per camera (history keeps the old one with its versions)."""
    cleaned = _name(name)
    others = type(definition)._default_manager.filter(camera_id=definition.camera_id, name=cleaned)
    if others.exclude(pk=definition.pk).exists():
        raise ValidationError({"name": f"This camera already has a {kind} with this name."})
    definition.name = cleaned
    definition.save(update_fields=["name"])


@transaction.atomic
def line_update(
    *,
    line: CountingLine,
    now: datetime,
    name: str | None = None,
    points: Sequence[Sequence[float]] | None = None,
    in_side: str | None = None,
    valid_from: datetime | None = None,
) -> CountingLine:
    """Rename (history keeps the line) and/or change the geometry from `valid_from` (default `now`) onward."""
    line = CountingLine.objects.select_for_update().get(pk=line.pk)
    if line.closed_at is not None:
        raise ValidationError({"line": "The line is closed."})
    if name is not None:
        _rename(line, name, kind="line")
    if points is None and in_side is None:
        return line
    current = line.versions.get(valid_until__isnull=True)
    size = camera_frame_size(camera=line.camera, now=now)
    geometry = (
        _line_points(points, size) if points is not None else [(current.x1, current.y1), (current.x2, current.y2)]
    )
    side = _in_side(in_side) if in_side is not None else current.in_side
    start = _valid_from(valid_from, now, after=current.valid_from)
    current.valid_until = start
    current.save(update_fields=["valid_until"])
    (x1, y1), (x2, y2) = geometry
    CountingLineVersion.objects.create(
        line=line, valid_from=start, x1=x1, y1=y1, x2=x2, y2=y2, in_side=side,
        frame_width=size[0], frame_height=size[1],
    )  # fmt: skip
    return line


@transaction.atomic
def line_close(*, line: CountingLine, now: datetime) -> CountingLine:
    """Stop counting from `now`; the line and its counts stay (a closed line's name can't be reused)."""
    line = CountingLine.objects.select_for_update().get(pk=line.pk)
    if line.closed_at is None:
        line.closed_at = now
        line.save(update_fields=["closed_at"])
        line.versions.filter(valid_until__isnull=True, valid_from__lt=now).update(valid_until=now)
        line.versions.filter(valid_until__isnull=True).delete()  # a version that would only start later
    return line


@transaction.atomic
def region_create(
    *,
    camera: Camera | None,
    name: str,
    points: Sequence[Sequence[float]],
    now: datetime,
    valid_from: datetime | None = None,
) -> Region:
    """A new region (polygon), measured from `valid_from` (default `now`)."""
    camera = _camera(camera)
    name = _name(name)
    size = camera_frame_size(camera=camera, now=now)
    geometry = _region_points(points, size)
    start = _valid_from(valid_from, now)
    Camera.objects.select_for_update().filter(pk=camera.pk).first()
    limit = traffic_setting("TRAFFIC_MAX_REGIONS_PER_CAMERA")
    if Region.objects.filter(camera=camera, closed_at__isnull=True).count() >= limit:
        raise ValidationError({"camera": f"This camera already has {limit} regions."})
    if Region.objects.filter(camera=camera, name=name).exists():
        raise ValidationError({"name": "This camera already has a region with this name."})
    region = Region.objects.create(camera=camera, name=name, created_at=now)
    RegionVersion.objects.create(
        region=region, valid_from=start, points=[list(p) for p in geometry], polygon=polygon_literal(geometry),
        frame_width=size[0], frame_height=size[1],
    )  # fmt: skip
    return region


@transaction.atomic
def region_update(
    *,
    region: Region,
    now: datetime,
    name: str | None = None,
    points: Sequence[Sequence[float]] | None = None,
    valid_from: datetime | None = None,
) -> Region:
    region = Region.objects.select_for_update().get(pk=region.pk)
    if region.closed_at is not None:
        raise ValidationError({"region": "The region is closed."})
    if name is not None:
        _rename(region, name, kind="region")
    if points is None:
        return region
    current = region.versions.get(valid_until__isnull=True)
    size = camera_frame_size(camera=region.camera, now=now)
    geometry = _region_points(points, size)
    start = _valid_from(valid_from, now, after=current.valid_from)
    current.valid_until = start
    current.save(update_fields=["valid_until"])
    RegionVersion.objects.create(
        region=region, valid_from=start, points=[list(p) for p in geometry], polygon=polygon_literal(geometry),
        frame_width=size[0], frame_height=size[1],
    )  # fmt: skip
    return region


@transaction.atomic
def region_close(*, region: Region, now: datetime) -> Region:
    region = Region.objects.select_for_update().get(pk=region.pk)
    if region.closed_at is None:
        region.closed_at = now
        region.save(update_fields=["closed_at"])
        region.versions.filter(valid_until__isnull=True, valid_from__lt=now).update(valid_until=now)
        region.versions.filter(valid_until__isnull=True).delete()
    return region
