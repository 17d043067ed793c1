"""Fixtures for archival tests: an archive root per test, the seeded policies, frames in given partitions."""

import importlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.db import connection

from archival.models import RetentionPolicy
from telemetry.services.partitions import partitions_apply

SEED = importlib.import_module("archival.migrations.0002_seed_retention_policies").SEED


@pytest.fixture(autouse=True)
def archive_root(settings: Any, tmp_path: Any) -> Any:
    """Archives of each test go to its own directory (the default FileSystemStorage under ARCHIVE_ROOT)."""
    settings.ARCHIVE_ROOT = str(tmp_path / "archive")
    return tmp_path / "archive"


@pytest.fixture
def policies(db: None) -> dict[str, RetentionPolicy]:
    """The seeded policies by table (re-created if a transactional test flushed them)."""
    for name, table, keep_for, unit, method, description in SEED:
        RetentionPolicy.objects.get_or_create(
            table=table,
            defaults={
                "name": name,
                "keep_for": keep_for,
                "keep_unit": unit,
                "method": method,
                "description": description,
            },
        )
    return {policy.table: policy for policy in RetentionPolicy.objects.all()}


def only_policy(table: str) -> None:
    """Disable every policy but the one for `table`, so a run touches that table alone."""
    RetentionPolicy.objects.exclude(table=table).update(enabled=False)


def insert_frames(
    start: datetime, count: int, *, step_seconds: float = 1.0, camera_id: uuid.UUID | None = None
) -> None:
    """`count` frames from `start`, one every `step_seconds`, with awkward values: NULLs, fractional floats."""
    camera_id = camera_id or uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, processing_time_ms,
                width, height, quality_score, detection_count, vehicle_count, person_count, bicycle_count,
                max_confidence)
            SELECT %s, %s::timestamptz + g * make_interval(secs => %s), g,
                   (ARRAY['completed', 'failed', 'pending'])[1 + g %% 3],
                   CASE WHEN g %% 5 = 0 THEN NULL ELSE g / 7.0 END, 1920, 1080, 0.1 + (g %% 9) / 10.0,
                   g %% 4, g %% 3, g %% 2, 0, 1.0 / (g + 3)
            FROM generate_series(0, %s - 1) g
            """,
            [camera_id, start, step_seconds, count],
        )


def count_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - test helper, fixed names
        return int(cursor.fetchone()[0])


def partition_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [table],
        )
        return {name for (name,) in cursor.fetchall()}


def rows_fingerprint(table: str, start: datetime, end: datetime) -> tuple[int, str]:
    """Row count and an md5 over every column of the rows in [start, end), in id order: equal means identical."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))
            FROM "{table}" t WHERE "timestamp" >= %s AND "timestamp" < %s""",  # noqa: S608 - fixed names
            [start, end],
        )
        count, digest = cursor.fetchone()
        return int(count), digest


@pytest.fixture
def make_partitions(db: None) -> Callable[[datetime], None]:
    def make(moment: datetime) -> None:
        partitions_apply(moment=moment)

    return make


# The tiering tests' data (two cameras on a cold-age, a sealed-age and a hot day) serves the other tests of tiers too
# (tests/archival/test_tiered_admin.py, test_late_duplicates.py). Imported last: test_tiering imports helpers above.
from tests.archival.test_tiering import cameras, tiered_data  # noqa: E402, F401
