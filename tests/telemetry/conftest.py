"""Fixtures for telemetry tests: cameras, partitions, and batch builders."""

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from cameras.models import Camera
from telemetry.services.partitions import partitions_apply

_names = itertools.count()


@pytest.fixture
def make_camera(db: None) -> Callable[..., Camera]:
    def make(**fields: Any) -> Camera:
        fields.setdefault("name", f"camera-{next(_names)}-{uuid.uuid4().hex[:6]}")
        return Camera.objects.create(**fields)

    return make


@pytest.fixture
def camera(make_camera: Callable[..., Camera]) -> Camera:
    return make_camera()


@pytest.fixture
def partitions(db: None) -> None:
    """The partitions `make run` creates: yesterday to 14 days ahead (daily), 6 months ahead (monthly)."""
    partitions_apply()


def frame_payload(
    camera: Camera | uuid.UUID,
    index: int = 0,
    *,
    start: datetime | None = None,
    detections: int = 2,
    **overrides: Any,
) -> dict[str, Any]:
    """One frame as an inference worker sends it: 30 fps from `start`, with `detections` objects."""
    start = start or datetime.now(UTC).replace(microsecond=0)
    camera_id = camera.id if isinstance(camera, Camera) else camera
    kinds = ["car", "person", "truck", "bicycle", "bus"]
    frame: dict[str, Any] = {
        "camera_id": str(camera_id),
        "timestamp": (start + timedelta(milliseconds=33 * index)).isoformat(),
        "frame_number": index,
        "processing_status": "completed",
        "processing_time_ms": 12.5,
        "width": 1920,
        "height": 1080,
        "quality_score": 0.93,
        "detections": [
            {
                "object_type": kinds[n % len(kinds)],
                "confidence": 0.5 + n / 100,
                "bbox": [10.0 * n, 20.0, 10.0 * n + 40.0, 80.0],
                "track_id": 1000 + n,
            }
            for n in range(detections)
        ],
    }
    frame.update(overrides)
    return frame


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in ("frame_metadata", "detections", "system_metrics", "telemetry_idempotency_keys"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
            counts[table] = cursor.fetchone()[0]
    return counts


def partition_row_counts(table: str) -> dict[str, int]:
    """Rows per partition of `table`, named from the catalog (partitions with no rows left out). Not
    `tableoid::regclass`: on Citus that names the shard a row lives in, not its partition."""
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            " WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
            [table],
        )
        for (partition,) in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{partition}"')  # noqa: S608 - a name read from the catalog
            rows = cursor.fetchone()[0]
            if rows:
                counts[partition] = rows
    return counts
