"""The camera page in Chromium: the vendored Chart.js draws its four charts from the rollups, the alert timeline
and the latest frames are there, nothing overflows at 1400 px. Screenshot 30."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cameras.choices import AlertKind
from cameras.services.alerts import alert_raise
from telemetry.services.partitions import partitions_apply
from tests.cameras.factories import make_camera
from tests.operations.test_camera_page import detection_rollup, hour_rollup, insert_frame

from .support import CHROMIUM, sign_in, snap

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)")


def test_the_camera_page_draws_its_charts(page):
    now = timezone.now()
    partitions_apply(moment=now)
    camera = make_camera(name="Harbour Rd / Quay St", config={"fps": 2})
    hour = now.replace(minute=0, second=0, microsecond=0)
    for back in range(1, 12):
        bucket = hour - timedelta(hours=back)
        hour_rollup(camera, bucket, frames=7200 - back * 300, failed=back * 4, p95=20.0 + back)
        detection_rollup(camera, bucket, "car", 400 + back * 10)
        detection_rollup(camera, bucket, "person", 50 + back)
    for number in range(5):
        insert_frame(
            camera, now - timedelta(seconds=number + 1), number=500 - number,
            detections=[{"object_type": "car", "confidence": 0.9, "bbox": [1, 2, 3, 4], "track_id": number}],
        )  # fmt: skip
    alert_raise(kind=AlertKind.PROCESSING_FAILURES, camera=camera, message="12 % of frames failed")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    sign_in(page)
    page.goto(reverse("operations-camera", args=[camera.pk]))

    assert page.evaluate("Chart.getChart('camera-rate-chart').data.labels.length") == 24
    assert page.evaluate("Chart.getChart('camera-detections-chart').data.datasets.map(d => d.label)") == [
        "car",
        "person",
    ]
    assert page.evaluate("Chart.getChart('camera-fps-chart').data.datasets.length") == 2  # metrics and promised
    assert page.locator("#camera-alert-timeline rect").count() == 1
    assert page.locator("#camera-frames-table tbody tr").count() == 5
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
    snap(page, "30-camera-page")
