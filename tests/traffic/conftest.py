"""Fixtures for traffic tests: cameras with counting lines and regions, a scene moving objects through them
(traffic.simulation), and frames ingested through telemetry's COPY service, batch by batch."""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from cameras.models import Camera, Zone
from telemetry.models import RollupWatermark
from telemetry.services.batches import frames_decode
from telemetry.services.ingest import frames_ingest
from telemetry.simulation import generate_frames
from traffic.models import CountingLine, Region
from traffic.services.definitions import line_create, region_create
from traffic.simulation import TrafficScene

# A fixed clock: the data lives on 2026-03-01 (a month's first day), from 23:20 to past midnight, so buckets
# span an hour and a day boundary.
T0 = datetime(2026, 3, 1, 23, 20, tzinfo=UTC)


@dataclass
class TrafficFleet:
    zone: Zone
    cameras: list[Camera]
    lines: list[CountingLine]
    regions: list[Region]


@pytest.fixture
def traffic_fleet(db: None) -> TrafficFleet:
    zone = Zone.objects.create(name="centre")
    cameras = [
        Camera.objects.create(name="cam-a", zone=zone, latitude=40.71, longitude=-74.0, config={"resolution": "1080p"}),
        Camera.objects.create(name="cam-b", zone=None, config={"width": 1280, "height": 720}),
    ]
    defined_at = T0 - timedelta(days=1)
    lines = [
        line_create(camera=cameras[0], name="stop line", points=[[200, 700], [1500, 650]], in_side="right",
                    now=defined_at),
        line_create(camera=cameras[0], name="crosswalk", points=[[900, 200], [950, 1000]], in_side="left",
                    now=defined_at),
        line_create(camera=cameras[1], name="gate", points=[[100, 400], [1200, 380]], in_side="left", now=defined_at),
    ]  # fmt: skip
    regions = [
        region_create(camera=cameras[0], name="box junction", points=[[300, 300], [800, 320], [760, 600], [320, 580]],
                      now=defined_at),
        region_create(camera=cameras[1], name="bay", points=[[600, 100], [1100, 150], [900, 500]], now=defined_at),
    ]  # fmt: skip
    return TrafficFleet(zone=zone, cameras=cameras, lines=lines, regions=regions)


def scene_frames(
    scene: TrafficScene, cameras: list[Camera], *, start: datetime, seconds: float, fps: float
) -> list[dict]:
    return list(generate_frames([c.id for c in cameras], fps=fps, start=start, seconds=seconds, scene=scene))


def ingest(frames: Iterable[dict[str, Any]], *, batch_size: int = 2000) -> None:
    frames = list(frames)
    for first in range(0, len(frames), batch_size):
        # Ingest's acceptance window is around the test's clock, not the wall clock: a day after the data.
        batch = frames_decode(msgspec.json.encode(frames[first : first + batch_size]), now=T0 + timedelta(days=1))
        frames_ingest(batch=batch)


def start_watermark(at: datetime) -> None:
    RollupWatermark.objects.update_or_create(name="telemetry", defaults={"watermark": at})


@pytest.fixture
def make_scene() -> Callable[..., TrafficScene]:
    def make(fleet: TrafficFleet, **options: Any) -> TrafficScene:
        return TrafficScene.for_cameras([c.id for c in fleet.cameras], now=T0, **options)

    return make


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
