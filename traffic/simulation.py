"""Objects moving along known paths through each camera's counting lines and regions, with the true counts.

`TrafficScene` is what `simulate_fleet --scene traffic` (and the tests and bench/traffic.py) put in front of the
simulated cameras: a new track every `spawn_seconds`, each moving in a straight line for `life_seconds` along a
path picked from the camera's lines (straight across a line, either way, inside its segment), regions (through
the polygon) or nowhere in particular. The scene records every observation it hands out, and computes the true
counts from them with the plain-Python geometry of traffic.geometry: an independent reference for the SQL in
traffic.services.counting, following the same definitions (docs/traffic.md).
"""

import itertools
import math
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from traffic.geometry import Point, point_in_polygon, segments_cross, side_right

__all__ = ["SceneLine", "SceneRegion", "TrafficScene", "TrafficTruth"]

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CLASSES = ["car", "car", "car", "truck", "bus", "bicycle", "motorcycle", "van", "person"]
BOX_HALF_WIDTH, BOX_HEIGHT = 20.0, 40.0


def _quarter(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def bucket_of(moment: datetime, granularity: str) -> datetime:
    if granularity == "15min":
        return _quarter(moment)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SceneLine:
    line_id: uuid.UUID
    a: Point
    b: Point
    in_right: bool
    valid_from: datetime
    valid_until: datetime | None = None

    def in_force(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)


@dataclass(frozen=True)
class SceneRegion:
    region_id: uuid.UUID
    points: tuple[Point, ...]
    valid_from: datetime
    valid_until: datetime | None = None

    def in_force(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)


@dataclass
class CameraLayout:
    width: int
    height: int
    lines: list[SceneLine] = field(default_factory=list)
    regions: list[SceneRegion] = field(default_factory=list)


@dataclass
class TrafficTruth:
    """True counts: keys are tuples, values counts (see TrafficScene.truth)."""

    objects: dict[tuple[str, uuid.UUID, datetime, str], int]
    crossings: dict[tuple[str, uuid.UUID, datetime, str, str], int]
    occupancy: dict[tuple[str, uuid.UUID, datetime], tuple[int, float]]
    dwell_tracks: dict[tuple[str, uuid.UUID, datetime, str], list[float]]


class TrafficScene:
    def __init__(
        self,
        layouts: dict[uuid.UUID, CameraLayout],
        *,
        spawn_seconds: float = 0.5,
        life_seconds: float = 4.0,
        seed: int = 0,
        untracked_every: int = 0,
    ) -> None:
        self.layouts = layouts
        self.spawn_seconds = spawn_seconds
        self.life_seconds = life_seconds
        self.seed = seed
        self.untracked_every = untracked_every
        self._observations: dict[tuple[uuid.UUID, int], list[tuple[datetime, float, float, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._paths: dict[tuple[uuid.UUID, int], tuple[Point, Point, str]] = {}

    # --- building -------------------------------------------------------------------------------------------
    @classmethod
    def for_cameras(cls, camera_ids: list[uuid.UUID], **options: Any) -> "TrafficScene":
        """The scene for these cameras with their lines and regions as stored now (every version)."""
        from django.utils import timezone

        from cameras.models import Camera
        from traffic.models import CountingLineVersion, RegionVersion
        from traffic.selectors.definitions import camera_frame_size

        now = options.pop("now", None) or timezone.now()
        layouts: dict[uuid.UUID, CameraLayout] = {}
        for camera in Camera.objects.filter(id__in=camera_ids):
            width, height = camera_frame_size(camera=camera, now=now)
            layouts[camera.id] = CameraLayout(width=width, height=height)
        for line in CountingLineVersion.objects.filter(line__camera_id__in=camera_ids).select_related("line"):
            layouts[line.line.camera_id].lines.append(
                SceneLine(
                    line.line_id,
                    (line.x1, line.y1),
                    (line.x2, line.y2),
                    line.in_side == "right",
                    line.valid_from,
                    line.valid_until,
                )
            )
        for region in RegionVersion.objects.filter(region__camera_id__in=camera_ids).select_related("region"):
            layouts[region.region.camera_id].regions.append(
                SceneRegion(
                    region.region_id,
                    tuple((float(x), float(y)) for x, y in region.points),
                    region.valid_from,
                    region.valid_until,
                )
            )
        for camera_id in camera_ids:
            layouts.setdefault(camera_id, CameraLayout(width=1920, height=1080))
        return cls(layouts, **options)

    # --- paths ----------------------------------------------------------------------------------------------
    def _path(self, camera_id: uuid.UUID, index: int) -> tuple[Point, Point, str]:
        key = (camera_id, index)
        if key not in self._paths:
            if len(self._paths) > 100_000:
                self._paths.clear()
            self._paths[key] = self._new_path(camera_id, index)
        return self._paths[key]

    def _new_path(self, camera_id: uuid.UUID, index: int) -> tuple[Point, Point, str]:
        layout = self.layouts[camera_id]
        rng = random.Random(f"{self.seed}:{camera_id}:{index}")  # noqa: S311 - simulated traffic
        object_type = rng.choice(CLASSES)
        lines = [line for line in layout.lines if line.valid_until is None]
        regions = [region for region in layout.regions if region.valid_until is None]
        kind = rng.random()
        if lines and kind < 0.6:
            line = lines[index % len(lines)]
            along = rng.uniform(0.2, 0.8)
            mid = (line.a[0] + (line.b[0] - line.a[0]) * along, line.a[1] + (line.b[1] - line.a[1]) * along)
            dx, dy = line.b[0] - line.a[0], line.b[1] - line.a[1]
            length = math.hypot(dx, dy)
            normal = (-dy / length, dx / length)
            reach = rng.uniform(60, 220)
            sign = 1 if rng.random() < 0.5 else -1
            start = (mid[0] + sign * normal[0] * reach, mid[1] + sign * normal[1] * reach)
            end = (mid[0] - sign * normal[0] * reach * rng.uniform(0.5, 1.5),
                   mid[1] - sign * normal[1] * reach * rng.uniform(0.5, 1.5))  # fmt: skip
        elif regions and kind < 0.9:
            region = regions[index % len(regions)]
            cx = sum(p[0] for p in region.points) / len(region.points)
            cy = sum(p[1] for p in region.points) / len(region.points)
            angle = rng.uniform(0, 2 * math.pi)
            reach = rng.uniform(20, 300)
            start = (cx + math.cos(angle) * reach, cy + math.sin(angle) * reach)
            end = (
                cx - math.cos(angle) * reach * rng.uniform(0.2, 1.2),
                cy - math.sin(angle) * reach * rng.uniform(0.2, 1.2),
            )
        else:
            start = (rng.uniform(0, layout.width), rng.uniform(0, layout.height))
            end = (rng.uniform(0, layout.width), rng.uniform(0, layout.height))
        clamp = self._clamp(layout)
        return clamp(start), clamp(end), object_type

    @staticmethod
    def _clamp(layout: CameraLayout) -> Any:
        def clamp(point: Point) -> Point:
            return (
                min(layout.width - 1.0, max(1.0, point[0])),
                min(layout.height - 1.0, max(BOX_HEIGHT + 1, point[1])),
            )

        return clamp

    # --- the simulator's Scene protocol ---------------------------------------------------------------------
    def detections(self, *, camera_id: uuid.UUID, moment: datetime) -> list[dict[str, Any]]:
        """Detections of every track alive at `moment` (bottom-centre on its path), recorded for the truth."""
        if camera_id not in self.layouts:
            return []
        elapsed = (moment - EPOCH).total_seconds()
        first = math.floor((elapsed - self.life_seconds) / self.spawn_seconds) + 1
        last = math.floor(elapsed / self.spawn_seconds)
        detections = []
        for index in range(max(first, 0), last + 1):
            age = elapsed - index * self.spawn_seconds
            if not 0 <= age < self.life_seconds:
                continue
            start, end, object_type = self._path(camera_id, index)
            fraction = age / self.life_seconds
            x = start[0] + (end[0] - start[0]) * fraction
            y = start[1] + (end[1] - start[1]) * fraction
            untracked = self.untracked_every and index % self.untracked_every == 0
            detections.append(
                {
                    "object_type": object_type,
                    "confidence": 0.9,
                    "bbox": [x - BOX_HALF_WIDTH, y - BOX_HEIGHT, x + BOX_HALF_WIDTH, y],
                    "track_id": None if untracked else index,
                }
            )
            if not untracked:
                # The SQL reads the stored floats back: keep exactly what the database computes.
                stored_x = ((x - BOX_HALF_WIDTH) + (x + BOX_HALF_WIDTH)) / 2
                with self._lock:
                    self._observations[(camera_id, index)].append((moment, stored_x, y, object_type))
        return detections

    # --- truth ----------------------------------------------------------------------------------------------
    def report(self) -> str:
        """The truth of what was sent, per line and direction and per camera, for `simulate_fleet --scene traffic`
        (compare with GET /api/v1/traffic/counts?granularity=day once the rollups have caught up)."""
        truth = self.truth()
        lines: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
        for (granularity, line_id, _bucket, direction, _class), count in truth.crossings.items():
            if granularity == "day":
                lines[(line_id, direction)] += count
        objects: dict[uuid.UUID, int] = defaultdict(int)
        for (granularity, camera_id, _bucket, _class), count in truth.objects.items():
            if granularity == "day":
                objects[camera_id] += count
        parts = [f"traffic truth: {sum(objects.values())} objects (track-days) on {len(objects)} cameras"]
        parts += [f"  line {line_id} {direction}: {count}" for (line_id, direction), count in sorted(lines.items())]
        return "\n".join(parts)

    def truth(self, *, max_gap: timedelta = timedelta(seconds=10)) -> TrafficTruth:
        """The counts that the definitions give for every observation handed out so far."""
        objects: dict[tuple[str, uuid.UUID, datetime, str], set[int]] = defaultdict(set)
        first_crossings: dict[tuple[uuid.UUID, uuid.UUID, int, str], tuple[datetime, str]] = {}
        minutes: dict[tuple[uuid.UUID, datetime], set[int]] = defaultdict(set)
        inside: dict[tuple[str, uuid.UUID, datetime, int], list[Any]] = {}
        with self._lock:
            observations = {key: sorted(rows) for key, rows in self._observations.items()}
        for (camera_id, track_id), rows in observations.items():
            layout = self.layouts[camera_id]
            for granularity in ("15min", "hour", "day"):
                seen: set[datetime] = set()
                for moment, _x, _y, object_type in rows:  # class of the first observation in the bucket
                    bucket = bucket_of(moment, granularity)
                    if bucket not in seen:
                        seen.add(bucket)
                        objects[(granularity, camera_id, bucket, object_type)].add(track_id)
            for previous, current in itertools.pairwise(rows):
                if current[0] - previous[0] > max_gap:
                    continue
                for line in layout.lines:
                    if not line.in_force(current[0]):
                        continue
                    p, c = (previous[1], previous[2]), (current[1], current[2])
                    if segments_cross(line.a, line.b, p, c):
                        direction = "in" if side_right(line.a, line.b, c) == line.in_right else "out"
                        key = (line.line_id, camera_id, track_id, direction)
                        if key not in first_crossings or current[0] < first_crossings[key][0]:
                            first_crossings[key] = (current[0], current[3])
            for moment, x, y, object_type in rows:
                for region in layout.regions:
                    if region.in_force(moment) and point_in_polygon((x, y), region.points):
                        minutes[(region.region_id, moment.replace(second=0, microsecond=0))].add(track_id)
                        for granularity in ("15min", "hour", "day"):
                            visit = (granularity, region.region_id, bucket_of(moment, granularity), track_id)
                            if visit not in inside:
                                inside[visit] = [moment, moment, object_type]
                            else:
                                inside[visit][1] = moment
        crossings: dict[tuple[str, uuid.UUID, datetime, str, str], int] = defaultdict(int)
        for (line_id, _camera, _track, direction), (moment, object_type) in first_crossings.items():
            for granularity in ("15min", "hour", "day"):
                crossings[(granularity, line_id, bucket_of(moment, granularity), direction, object_type)] += 1
        occupancy_minutes: dict[tuple[str, uuid.UUID, datetime], list[int]] = defaultdict(list)
        for (region_id, minute), tracks in minutes.items():
            for granularity in ("15min", "hour", "day"):
                occupancy_minutes[(granularity, region_id, bucket_of(minute, granularity))].append(len(tracks))
        span = {"15min": 15, "hour": 60, "day": 1440}
        occupancy = {key: (max(counts), sum(counts) / span[key[0]]) for key, counts in occupancy_minutes.items()}
        dwell: dict[tuple[str, uuid.UUID, datetime, str], list[float]] = defaultdict(list)
        for (granularity, region_id, bucket, _track), (first, last, object_type) in inside.items():
            seconds = (last - first).total_seconds()
            dwell[(granularity, region_id, bucket, object_type)].append(seconds)
            dwell[(granularity, region_id, bucket, "")].append(seconds)
        return TrafficTruth(
            objects={key: len(tracks) for key, tracks in objects.items()},
            crossings=dict(crossings),
            occupancy=occupancy,
            dwell_tracks=dict(dwell),
        )


def percentile_cont(values: Iterable[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the order statistics around fraction * (n-1)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
