"""Fixtures for rollup and analytics tests: a small fleet in two zones (plus a camera with no zone), raw
frames and detections written straight into the partitioned tables, and the raw-table aggregates the
rollups must equal."""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from cameras.models import Camera, Zone
from telemetry.services.partitions import partitions_apply

OBJECT_TYPES = ["car", "person", "truck", "bicycle", "bus"]


@dataclass
class Fleet:
    north: Zone
    south: Zone
    cameras: list[Camera]  # two in north, one in south, one with no zone

    @property
    def camera_ids(self) -> list[uuid.UUID]:
        return [camera.id for camera in self.cameras]


@pytest.fixture
def fleet(db: None) -> Fleet:
    partitions_apply()
    north = Zone.objects.create(name="north")
    south = Zone.objects.create(name="south")
    cameras = [
        Camera.objects.create(name="n-1", zone=north),
        Camera.objects.create(name="n-2", zone=north),
        Camera.objects.create(name="s-1", zone=south),
        Camera.objects.create(name="loose", zone=None),
    ]
    return Fleet(north=north, south=south, cameras=cameras)


@pytest.fixture
def now() -> datetime:
    """A pinned clock: 25 minutes past the current hour, so the current hour is partly filled."""
    return datetime.now(UTC).replace(minute=25, second=0, microsecond=0)


def insert_frames(
    rows: list[tuple[uuid.UUID, datetime, str, float | None, int]], *, detections_per_frame: int | None = None
) -> None:
    """Raw frames (camera_id, timestamp, status, processing_time_ms, detection_count), each with that many
    detection rows of rotating object types, written as ingest would leave them."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, processing_time_ms, "
            "detection_count, vehicle_count, person_count, bicycle_count) "
            "VALUES (%s, %s, 0, %s, %s, %s, 0, 0, 0)",
            rows,
        )
        detection_rows = []
        for index, (camera_id, timestamp, _status, _time, count) in enumerate(rows):
            for n in range(count if detections_per_frame is None else detections_per_frame):
                confidence = 0.5 + ((index + n) % 50) / 100
                detection_rows.append(
                    (camera_id, timestamp, OBJECT_TYPES[(index + n) % len(OBJECT_TYPES)], confidence, index)
                )
        if detection_rows:
            cursor.executemany(
                "INSERT INTO detections (camera_id, timestamp, object_type, confidence, bbox_x1, bbox_y1, bbox_x2, "
                "bbox_y2, track_id) VALUES (%s, %s, %s, %s, 0, 0, 10, 10, %s)",
                detection_rows,
            )


@pytest.fixture
def make_frames() -> Callable[..., list[tuple]]:
    def make(
        camera_ids: list[uuid.UUID], *, start: datetime, end: datetime, per_camera: int, seed: int = 7, **kw: Any
    ) -> list[tuple]:
        """`per_camera` frames per camera spread over [start, end), ~10 % failed, ~5 % without a processing
        time, processing times with a long tail, 0-4 detections each."""
        rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        span = (end - start).total_seconds()
        rows = []
        for camera_id in camera_ids:
            for _ in range(per_camera):
                timestamp = start + timedelta(seconds=rng.uniform(0, span))
                timestamp = timestamp.replace(microsecond=rng.randrange(0, 1_000_000))
                status = "failed" if rng.random() < 0.1 else "completed"
                processing = None if rng.random() < 0.05 else round(rng.lognormvariate(3.0, 0.6), 3)
                rows.append((camera_id, timestamp, status, processing, rng.randrange(0, 5)))
        insert_frames(rows, **kw)
        return rows

    return make


def raw_frame_aggregates(unit: str, since: datetime, until: datetime) -> dict[tuple[str, Any, datetime], dict]:
    """The reference: per camera, per zone (None = no zone) and for the fleet, per bucket of `unit`, computed
    directly from the raw frame rows."""
    result: dict[tuple[str, Any, datetime], dict] = {}
    groups = {
        "camera": "frames.camera_id",
        "zone": "cameras.zone_id",
        "fleet": "NULL::uuid",
    }
    with connection.cursor() as cursor:
        for scope, key in groups.items():
            cursor.execute(
                f"""
                SELECT {key}, date_trunc(%s, frames.timestamp, 'UTC') AS bucket, count(*),
                       count(*) FILTER (WHERE processing_status = 'failed'), avg(processing_time_ms),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms), max(processing_time_ms),
                       sum(detection_count)
                FROM frame_metadata AS frames JOIN cameras ON cameras.id = frames.camera_id
                WHERE frames.timestamp >= %s AND frames.timestamp < %s
                GROUP BY 1, 2
                """,  # noqa: S608 - fixed expressions
                [unit, since, until],
            )
            for scope_key, bucket, frames, failed, mean, p95, maximum, detections in cursor.fetchall():
                result[(scope, scope_key, bucket)] = {
                    "frames": frames,
                    "failed_frames": failed,
                    "mean": mean,
                    "p95": p95,
                    "max": maximum,
                    "detections": detections,
                }
    return result


def raw_detection_aggregates(unit: str, since: datetime, until: datetime) -> dict[tuple, tuple[int, float]]:
    result: dict[tuple, tuple[int, float]] = {}
    groups = {"camera": "detections.camera_id", "zone": "cameras.zone_id", "fleet": "NULL::uuid"}
    with connection.cursor() as cursor:
        for scope, key in groups.items():
            cursor.execute(
                f"""
                SELECT {key}, date_trunc(%s, detections.timestamp, 'UTC'), object_type, count(*), sum(confidence)
                FROM detections JOIN cameras ON cameras.id = detections.camera_id
                WHERE detections.timestamp >= %s AND detections.timestamp < %s
                GROUP BY 1, 2, 3
                """,  # noqa: S608 - fixed expressions
                [unit, since, until],
            )
            for scope_key, bucket, object_type, count, confidence in cursor.fetchall():
                result[(scope, scope_key, bucket, object_type)] = (count, confidence)
    return result
