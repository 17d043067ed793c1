"""Rollup, job and ingest metrics on GET /metrics, and the dashboard listed on the admin index."""

from datetime import timedelta

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from telemetry import tasks

from .test_rollups import start_watermark

pytestmark = pytest.mark.django_db


def samples(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_a_refresh_run_shows_in_rollup_lag_rows_and_job_outcomes(fleet, now, make_frames, client):
    # Given frames behind a watermark and the counters before
    start_watermark(now - timedelta(minutes=20))
    make_frames(fleet.camera_ids, start=now - timedelta(minutes=20), end=now, per_camera=25)
    succeeded = ("its_job_runs_total", frozenset({"job": tasks.REFRESH_ROLLUPS, "outcome": "succeeded"}.items()))
    rows = ("its_rollup_refresh_rows_total", frozenset())
    raw = ("its_rollup_refresh_raw_frames_total", frozenset())
    before = samples(client)

    # When the job runs
    outcome = tasks.refresh_rollups(now=now.isoformat())

    # Then the scrape shows one more successful run, the rows it wrote, and the lag read from the watermark
    after = samples(client)
    assert after[succeeded] == before.get(succeeded, 0) + 1
    assert after[rows] == before.get(rows, 0) + outcome["rows"]
    assert after[raw] == before.get(raw, 0) + 100
    assert after[("its_rollup_last_run_rows", frozenset())] == outcome["rows"]
    assert ("its_rollup_lag_seconds", frozenset()) in after
    assert after[("its_metrics_collector_up", frozenset({"collector": "rollups"}.items()))] == 1


def test_ingest_counts_rows_batches_and_rejections(fleet, client, api_client):
    from tests.telemetry.conftest import frame_payload

    camera = fleet.cameras[0]
    frames_rows = ("its_ingest_rows_total", frozenset({"table": "frame_metadata"}.items()))
    detection_rows = ("its_ingest_rows_total", frozenset({"table": "detections"}.items()))
    batches = ("its_ingest_batch_seconds_count", frozenset({"endpoint": "frames"}.items()))
    rejected = ("its_ingest_rejected_batches_total", frozenset({"endpoint": "frames", "status": "422"}.items()))
    before = samples(client)

    # When a batch of 10 frames with 3 detections each is written, and a batch naming an unknown camera is refused
    response = api_client.post_json("/api/v1/frames", [frame_payload(camera, n, detections=3) for n in range(10)])
    assert response.status_code == 201, response.content
    bad = frame_payload(camera, 99, camera_id="00000000-0000-0000-0000-00000000beef")
    assert api_client.post_json("/api/v1/frames", [bad]).status_code == 422

    # Then the counters moved by exactly that
    after = samples(client)
    assert after[frames_rows] == before.get(frames_rows, 0) + 10
    assert after[detection_rows] == before.get(detection_rows, 0) + 30
    assert after[batches] == before.get(batches, 0) + 1
    assert after[rejected] == before.get(rejected, 0) + 1


def test_a_body_refused_for_its_size_counts_as_a_rejected_batch(fleet, client, api_client, settings):
    from tests.telemetry.conftest import frame_payload

    settings.TELEMETRY_MAX_BODY_BYTES = 1000
    too_large = ("its_ingest_rejected_batches_total", frozenset({"endpoint": "frames", "status": "413"}.items()))
    before = samples(client)

    response = api_client.post_json("/api/v1/frames", [frame_payload(fleet.cameras[0], n) for n in range(10)])

    assert response.status_code == 413
    assert samples(client)[too_large] == before.get(too_large, 0) + 1


def test_the_admin_index_links_the_dashboard(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert reverse("admin:telemetry_analytics_dashboard") in response.content.decode()
