"""`GET /metrics`: Prometheus text, protected, with request, pool, fleet and registered metrics."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from cameras.choices import AlertKind
from cameras.services.alerts import alert_raise
from its_camera import metrics
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db


def samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_metrics_are_prometheus_text_with_requests_pool_cameras_and_alerts(client, api_client, live_redis):
    # Given cameras in each connection status, an open alert, and an API request served
    now = timezone.now()
    for seconds in (5, 10, 90):
        make_camera(status="online", last_seen_at=now - timedelta(seconds=seconds))
    make_camera(status="offline", last_seen_at=None)
    alert_raise(kind=AlertKind.JOB_FAILED, subject="x", message="failed")
    assert api_client.get("/api/v1/whoami").status_code == 200

    # When Prometheus scrapes from an allowed address (the test client is 127.0.0.1)
    response = client.get("/metrics")

    # Then the text format parses, and holds the fleet, alerts, requests and pool
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    values = samples(response.content)
    assert values[("its_cameras", frozenset({"connection_status": "streaming", "status": "online"}.items()))] == 2
    assert values[("its_cameras", frozenset({"connection_status": "recent", "status": "online"}.items()))] == 1
    assert values[("its_cameras", frozenset({"connection_status": "stale", "status": "offline"}.items()))] == 1
    alert_labels = frozenset({"kind": "job_failed", "severity": "warning", "state": "open"}.items())
    assert values[("its_alerts_active", alert_labels)] == 1
    request_labels = frozenset({"method": "GET", "route": "api/v1/whoami", "status": "200"}.items())
    assert values[("its_http_requests_total", request_labels)] >= 1
    assert values[("its_db_pool_connections", frozenset({"state": "max"}.items()))] == 4  # test pool max
    assert values[("its_metrics_collector_up", frozenset({"collector": "cameras"}.items()))] == 1


def test_metrics_refuse_other_networks_unless_the_token_is_sent(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.METRICS_BEARER_TOKEN = "scrape-secret"

    refused = client.get("/metrics")
    wrong_token = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    from_the_network = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    with_token = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})

    assert refused.status_code == wrong_token.status_code == 403
    assert "detail" in refused.json()
    assert from_the_network.status_code == with_token.status_code == 200


@pytest.fixture
def scratch_collectors() -> Iterator[None]:
    saved = dict(metrics._collectors)
    yield
    metrics._collectors.clear()
    metrics._collectors.update(saved)


def test_apps_add_metrics_with_one_call_and_a_failing_collector_does_not_break_the_scrape(client, scratch_collectors):
    # Given what part B adds: a counter, a histogram, and two scrape-time collectors (one broken)
    rows = metrics.counter("its_test_ingest_rows_total", "Rows written.", ["table"])
    latency = metrics.histogram("its_test_ingest_batch_seconds", "Batch latency.")
    assert metrics.counter("its_test_ingest_rows_total", "Rows written.", ["table"]) is rows
    rows.labels(table="frame_metadata").inc(2000)
    latency.observe(0.02)

    @metrics.register_collector("partitions")
    def partitions():
        family = metrics.gauge_family("its_test_partitions_ahead", "Partitions ahead.", ["table"])
        family.add_metric(["frame_metadata"], 14)
        yield family

    @metrics.register_collector("broken")
    def broken():
        raise RuntimeError("database is gone")
        yield  # pragma: no cover

    # When scraped
    values = samples(client.get("/metrics").content)

    # Then every one of them is there, and the broken collector is reported as down
    assert values[("its_test_ingest_rows_total", frozenset({"table": "frame_metadata"}.items()))] == 2000
    assert values[("its_test_ingest_batch_seconds_bucket", frozenset({"le": "0.025"}.items()))] == 1
    assert values[("its_test_partitions_ahead", frozenset({"table": "frame_metadata"}.items()))] == 14
    assert values[("its_metrics_collector_up", frozenset({"collector": "broken"}.items()))] == 0
    assert values[("its_metrics_collector_up", frozenset({"collector": "partitions"}.items()))] == 1
