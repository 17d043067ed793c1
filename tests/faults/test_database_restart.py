"""Fault: PostgreSQL restarts while integrations push frames over HTTP.

A real uvicorn server ingests into a PostgreSQL of the test's own. Two clients send batches, each
with its Idempotency-Key, and retry on 503 or a dropped connection, as the API tells them to. Mid-way
the database is restarted. Clients must get 503 (never a 500 page, never a hang), and once they have
retried, every batch is stored exactly once. The figures are written to
test-artifacts/faults/database_restart.json for the issue note."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.commands import manage
from tests.deploy.postgres_tools import TemporaryCluster, free_port

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "faults"
BATCHES_PER_CLIENT = 30
FRAMES_PER_BATCH = 200
REQUEST_TIMEOUT = 15.0  # a request that takes longer than this counts as a hang


@pytest.fixture(scope="module")
def cluster() -> Iterator[TemporaryCluster]:
    workdir = Path(tempfile.mkdtemp(prefix="its-fault-"))
    workdir.chmod(0o777)
    cluster = TemporaryCluster(workdir)
    cluster.start()
    try:
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE its_camera")
        manage("migrate", "--noinput", DATABASE_URL=cluster.url("its_camera"))
        manage("partitions", "apply", DATABASE_URL=cluster.url("its_camera"))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def server(cluster: TemporaryCluster) -> Iterator[tuple[str, str]]:
    """uvicorn with two workers on the cluster; returns (base URL, an all-scopes API key)."""
    database_url = cluster.url("its_camera")
    raw_key = manage("createapikey", "--name", "fault test", "--scopes", "all", DATABASE_URL=database_url)
    raw_key = raw_key.strip().splitlines()[-1]
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "DB_POOL_TIMEOUT": "3",
        "DB_CONNECT_TIMEOUT": "2",
    }
    log = Path(tempfile.mkstemp(prefix="its-fault-uvicorn-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"uvicorn did not start:\n{log.read_text()}")
    try:
        yield base, raw_key
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.unlink(missing_ok=True)


START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def batch(camera_id: str, client: int, number: int) -> list[dict]:
    first = (client * BATCHES_PER_CLIENT + number) * FRAMES_PER_BATCH
    return [
        {
            "camera_id": camera_id,
            "timestamp": (START + timedelta(milliseconds=first + i)).isoformat(),
            "frame_number": first + i,
            "processing_status": "completed",
            "processing_time_ms": 12.5,
            "detections": [{"object_type": "car", "confidence": 0.9, "bbox": [1, 2, 30, 40], "track_id": 7}],
        }
        for i in range(FRAMES_PER_BATCH)
    ]


def test_restart_during_ingest_loses_nothing_and_stores_nothing_twice(cluster, server):
    base, raw_key = server
    headers = {"X-API-Key": raw_key}
    camera = httpx.post(f"{base}/api/v1/cameras", json={"name": "fault camera"}, headers=headers, timeout=10)
    assert camera.status_code == 201, camera.text
    camera_id = camera.json()["id"]

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stored_once: list[str] = []

    def record(outcome: str) -> None:
        with lock:
            outcomes[outcome] += 1

    def client(number: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as http:
            for batch_number in range(BATCHES_PER_CLIENT):
                key = f"client-{number}-batch-{batch_number}-{uuid.uuid4()}"
                body = batch(camera_id, number, batch_number)
                attempts = 0
                while True:
                    attempts += 1
                    record("requests")
                    try:
                        response = http.post("/api/v1/frames", json=body, headers={"Idempotency-Key": key})
                    except httpx.TimeoutException:
                        record("hung")
                        continue
                    except httpx.TransportError:
                        record("connection errors")
                        time.sleep(0.2)
                        continue
                    record(f"HTTP {response.status_code}")
                    if response.status_code == 201:
                        if attempts > 1:
                            record("batches retried")
                        with lock:
                            stored_once.append(key)
                        break
                    assert response.status_code == 503, response.text
                    assert response.json()["detail"]
                    time.sleep(float(response.headers.get("Retry-After", "1")) / 5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    while outcomes["HTTP 201"] < BATCHES_PER_CLIENT // 2:  # restart mid-way through the run
        time.sleep(0.05)
    restarted_at = outcomes["requests"]
    cluster.restart(down_for=3)
    for thread in threads:
        thread.join(timeout=300)

    with psycopg.connect(cluster.url("its_camera").replace("postgres://", "postgresql://")) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (camera_id, timestamp)) FROM frame_metadata"
        ).fetchone()
        detections = conn.execute("SELECT count(*) FROM detections").fetchone()[0]
    expected = 2 * BATCHES_PER_CLIENT * FRAMES_PER_BATCH
    figures = {
        "batches": 2 * BATCHES_PER_CLIENT,
        "frames_sent": expected,
        "restart_after_requests": restarted_at,
        **dict(outcomes),
        "frames_stored": rows,
        "distinct_frames": distinct,
        "detections_stored": detections,
        "frames_lost": expected - distinct,
        "frames_duplicated": rows - distinct,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "database_restart.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))

    assert not any(thread.is_alive() for thread in threads)
    assert outcomes["hung"] == 0
    assert outcomes["HTTP 500"] == 0
    assert outcomes["HTTP 503"] + outcomes["connection errors"] > 0  # the outage was seen, and survived
    assert len(stored_once) == 2 * BATCHES_PER_CLIENT
    assert rows == distinct == expected
    assert detections == expected
