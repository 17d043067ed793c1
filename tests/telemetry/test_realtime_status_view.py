from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from telemetry.services.batches import MetricIn
from telemetry.services.ingest import metrics_ingest

pytestmark = pytest.mark.django_db


def fps_current(camera):
    with connection.cursor() as cursor:
        cursor.execute("SELECT fps_current FROM realtime_camera_status WHERE id = %s", [camera.id])
        return cursor.fetchone()[0]


def test_the_view_shows_the_latest_fps_metric_and_falls_back_to_the_heartbeat(make_camera, partitions):
    reporting, silent = make_camera(last_fps=25.0), make_camera(last_fps=12.0)
    now = datetime.now(UTC)
    metrics_ingest(
        metrics=[
            MetricIn(timestamp=now - timedelta(seconds=20), name="fps", value=28.0, camera_id=reporting.id),
            MetricIn(timestamp=now - timedelta(seconds=5), name="fps", value=29.5, camera_id=reporting.id),
            MetricIn(timestamp=now - timedelta(seconds=1), name="gpu_utilization", value=0.9, camera_id=reporting.id),
            MetricIn(timestamp=now - timedelta(hours=2), name="fps", value=3.0, camera_id=silent.id),
        ]
    )

    assert fps_current(reporting) == 29.5
    assert fps_current(silent) == 12.0  # its only fps metric is two hours old
