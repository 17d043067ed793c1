"""Liveness, readiness that means ready, and the operators' health status.

Readiness answers 503 only when the database (the core work) is unreachable; Redis, partitions and rollup lag
degrade it (200, named). It answers within HEALTH_CHECK_TIMEOUT_SECONDS whatever is down, and shows no
hosts, ports or exception text. The checks that read through the pool run in their own threads on their own
connections, so the tests that need them to see data use committed data (transaction=True)."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from its_camera import health
from its_camera.health import register_check
from telemetry.services.partitions import partitions_apply
from tests.deploy.postgres_tools import free_port

# Generous: the machine is shared (and `make test-clock` runs under libfaketime); the bug was ~20 s, and every
# timeout that the bound must cut short here is at least twice the bound.
MARGIN_SECONDS = 3.0


def warm_up(client) -> None:
    """The first request of a process imports the URLconf and the API (half a second): not the probe's time."""
    client.get("/health/live")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel completes the handshake) and never answers: a hung
    server, the case a connect timeout is for."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def assert_no_internals(text: str, *ports: int) -> None:
    for leaked in ("127.0.0.1", "localhost", "postgres://", "redis://", "Error", "Timeout", *map(str, ports)):
        assert leaked not in text, f"{leaked!r} in {text}"


def test_live_answers_without_touching_services(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_ready_when_every_check_passes(client):
    # given the current and next partitions (the "partitions" check), committed so the check's thread sees them
    partitions_apply()

    # when
    response = client.get("/health/ready")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["degraded"] == []
    assert {"database", "redis", "partitions", "rollups"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["database"]["critical"] is True
    assert body["checks"]["redis"]["critical"] is False


@pytest.mark.django_db(transaction=True)
def test_ready_stays_200_and_names_redis_when_redis_is_down(client, settings):
    # given the broker at a closed port
    partitions_apply()
    port = closed_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    warm_up(client)

    # when
    started = time.monotonic()
    response = client.get("/health/ready")
    elapsed = time.monotonic() - started

    # then: still in the load balancer, with the degraded check named
    assert elapsed < settings.HEALTH_CHECK_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["redis"]
    assert body["checks"]["redis"] == {
        "ok": False,
        "critical": False,
        "reason": "failed",
        "ms": body["checks"]["redis"]["ms"],
    }
    assert body["checks"]["database"]["ok"] is True
    assert_no_internals(response.content.decode(), port)


@pytest.mark.django_db(transaction=True)
def test_ready_answers_within_the_bound_when_redis_hangs(client, settings, silent_server):
    # given a Redis that accepts connections and never answers (its client would wait out the socket timeout)
    partitions_apply()
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_server}/0"
    warm_up(client)

    started = time.monotonic()
    response = client.get("/health/ready")
    elapsed = time.monotonic() - started

    assert elapsed < settings.HEALTH_CHECK_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert response.status_code == 200
    assert response.json()["degraded"] == ["redis"]
    assert response.json()["checks"]["redis"]["reason"] in {"timed out", "failed"}


@pytest.mark.django_db
def test_ready_is_503_fast_and_says_nothing_internal_when_the_database_is_refused(client, settings, monkeypatch):
    port = closed_port()
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", port)
    warm_up(client)

    started = time.monotonic()
    response = client.get("/health/ready")
    elapsed = time.monotonic() - started

    assert elapsed < settings.HEALTH_CHECK_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    # refused at once; on a loaded machine the answer can also come after the bound ("timed out")
    assert body["detail"] in {"database: failed", "database: timed out"}
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["critical"] is True
    # the checks that read through the pool do not wait for it: they are skipped (or cut at the bound with it)
    assert body["checks"]["partitions"]["reason"] in {"skipped", "timed out"}
    assert body["checks"]["rollups"]["reason"] in {"skipped", "timed out"}
    assert_no_internals(response.content.decode(), port)


@pytest.fixture
def extra_check() -> Iterator[Callable[..., None]]:
    """Registers a check for one test (an app's check, as archival and telemetry register theirs)."""
    added: list[str] = []

    def add(name: str, run: Callable[[], str], **options: Any) -> None:
        register_check(name, **options)(run)
        added.append(name)

    yield add
    for name in added:
        health._checks.pop(name, None)


def fails() -> str:
    raise RuntimeError("disk full on 10.1.2.3:5432")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("critical", "status_code", "status"), [(False, 200, "degraded"), (True, 503, "unavailable")])
def test_only_a_failing_critical_check_takes_the_process_out(client, extra_check, critical, status_code, status):
    partitions_apply()
    extra_check("archive-disk", fails, critical=critical)

    response = client.get("/health/ready")
    full = client.get("/health/status")

    assert response.status_code == status_code
    assert response.json()["status"] == status
    assert ("archive-disk" in response.json()["degraded"]) is not critical
    assert "10.1.2.3" not in response.content.decode()
    assert full.json()["checks"]["archive-disk"]["error"] == "RuntimeError: disk full on 10.1.2.3:5432"


@pytest.mark.django_db(transaction=True)
def test_a_check_slower_than_the_bound_is_reported_timed_out_at_the_bound(client, settings, extra_check):
    partitions_apply()
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1.5

    def slow() -> str:
        time.sleep(1.5 + MARGIN_SECONDS + 2)
        return "ok"

    extra_check("slow", slow)
    extra_check("after-slow", lambda: "ok", needs=("slow",))

    warm_up(client)
    started = time.monotonic()
    response = client.get("/health/ready")
    elapsed = time.monotonic() - started

    assert elapsed < 1.5 + MARGIN_SECONDS
    assert response.json()["checks"]["slow"]["reason"] == "timed out"
    assert response.json()["checks"]["after-slow"]["reason"] == "timed out"
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.fixture
def web_without_database(silent_server: int) -> Iterator[str]:
    """A real uvicorn process whose database hangs (accepts, never answers), with the default pool and connect
    timeouts (DB_POOL_TIMEOUT 10 s, DB_CONNECT_TIMEOUT 5 s): the set-up in which the probe took ~20 s."""
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres:secret@127.0.0.1:{silent_server}/its_camera",
    }
    for name in ("DB_POOL_TIMEOUT", "DB_CONNECT_TIMEOUT", "HEALTH_CHECK_TIMEOUT_SECONDS"):
        environment.pop(name, None)
    log = Path(tempfile.mkstemp(prefix="its-health-uvicorn-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning"],
            cwd=django_settings.BASE_DIR,
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
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"uvicorn did not start:\n{log.read_text()}")
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.unlink(missing_ok=True)


def test_ready_is_503_within_the_bound_from_a_real_server_whose_database_hangs(web_without_database, silent_server):
    # when a load balancer probes (from anywhere: the body is public)
    started = time.monotonic()
    response = httpx.get(f"{web_without_database}/health/ready", timeout=30)
    elapsed = time.monotonic() - started

    # then
    assert elapsed < django_settings.HEALTH_CHECK_TIMEOUT_SECONDS + MARGIN_SECONDS, elapsed
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    body = response.json()
    assert body["detail"] in {"database: failed", "database: timed out"}
    # the pool's checks never waited for the pool (10 s): skipped, or cut at the bound with the database check
    assert body["checks"]["partitions"]["reason"] in {"skipped", "timed out"}
    assert_no_internals(response.text, silent_server)
    assert "secret" not in response.text

    # and an operator on an allowed network (loopback here) gets the full text from /health/status
    status = httpx.get(f"{web_without_database}/health/status", timeout=30)
    assert status.status_code == 200
    assert status.json()["failing"] == ["database"]
    assert status.json()["checks"]["database"]["error"]


@pytest.mark.django_db
def test_health_status_is_for_allowed_networks_the_metrics_token_or_staff(client, settings, django_user_model):
    settings.METRICS_BEARER_TOKEN = "scrape-token"
    outside = {"REMOTE_ADDR": "203.0.113.9"}

    anonymous = client.get("/health/status", **outside)
    with_token = client.get("/health/status", HTTP_AUTHORIZATION="Bearer scrape-token", **outside)
    client.force_login(django_user_model.objects.create_user("not-staff", password="x"))
    not_staff = client.get("/health/status", **outside)
    client.force_login(django_user_model.objects.create_user("operator", password="x", is_staff=True))
    staff = client.get("/health/status", **outside)

    assert anonymous.status_code == 403
    assert anonymous.json()["detail"]
    assert not_staff.status_code == 403
    assert with_token.status_code == 200
    assert staff.status_code == 200
    assert set(staff.json()["checks"]) >= {"database", "redis"}


@pytest.mark.django_db
def test_metrics_expose_the_last_result_of_each_check(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    client.get("/health/ready")
    exposition = client.get("/metrics").content.decode()

    assert 'its_health_check_up{check="redis"} 0.0' in exposition
    assert 'its_health_check_up{check="database"} 1.0' in exposition
