"""Fixtures for live events: a clean Redis namespace, real uvicorn servers on the test database, and an
SSE reader over a real HTTP connection (httpx in a thread)."""

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from django.conf import settings
from django.db import connection

from its_camera import events

SERVER_ENV = {
    "LIVE_EVENTS_HEARTBEAT_SECONDS": "0.5",
    "LIVE_EVENTS_SUBSCRIBER_QUEUE_SIZE": "50",
    "LIVE_EVENTS_REDIS_PING_SECONDS": "0.5",
    "LIVE_EVENTS_CLIENT_RETRY_MS": "500",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clear_live_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=events.KEY_PREFIX + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def live_redis() -> Iterator[redis.Redis]:
    """The live-event keys of this Redis database, empty before and after the test; the publisher's
    circuit breaker closed."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    clear_live_keys(client)
    events._breaker_open_until = 0.0
    yield client
    clear_live_keys(client)
    events._breaker_open_until = 0.0
    client.close()


def stream_entries(client: redis.Redis) -> list[tuple[int, str, dict[str, Any]]]:
    """What the replay buffer holds: (id, type, data)."""
    return [
        (int(entry_id.split(b"-")[0]), fields[b"t"].decode(), orjson.loads(fields[b"d"]))
        for entry_id, fields in client.xrange(events.STREAM_KEY)
    ]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


_servers: list[Server] = []  # for failure messages: the server logs say why a request failed


def start_server(environment: dict[str, str], app: str = "config.asgi:application") -> Server:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="its-live-uvicorn-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "1",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
    _servers.append(server)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{server.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health/live", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"uvicorn did not answer:\n{server.output()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)
    server.log.unlink(missing_ok=True)
    if server in _servers:
        _servers.remove(server)


def server_environment(**overrides: str) -> dict[str, str]:
    """The test process's environment, pointed at the test database (created by pytest-django)."""
    params = connection.get_connection_params()
    host = str(params.get("host") or "127.0.0.1").replace("/", "%2F")
    port = f":{params['port']}" if params.get("port") else ""
    database_url = f"postgres://{params.get('user') or 'postgres'}@{host}{port}/{connection.settings_dict['NAME']}"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url}
    environment["REDIS_URL"] = settings.REDIS_URL
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(SERVER_ENV)
    environment.update(overrides)
    return environment


@dataclass
class ServerPair:
    a: Server
    b: Server
    metrics_dir: str


@pytest.fixture(scope="session")
def live_servers(django_db_setup: None, django_db_blocker: Any) -> Iterator[ServerPair]:
    """Two uvicorn processes (two web processes of one host), sharing a Prometheus multiprocess directory."""
    metrics_dir = tempfile.mkdtemp(prefix="its-live-metrics-")
    with django_db_blocker.unblock():
        environment = server_environment(PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    a = start_server(environment)
    try:
        b = start_server(environment)
    except Exception:
        stop_server(a)
        raise
    try:
        yield ServerPair(a=a, b=b, metrics_dir=metrics_dir)
    finally:
        stop_server(a)
        stop_server(b)
        shutil.rmtree(metrics_dir, ignore_errors=True)


@pytest.fixture
def extra_server(django_db_blocker: Any) -> Iterator[Any]:
    """Start further servers with other settings (e.g. a Redis that is down); stopped after the test."""
    started: list[Server] = []

    def start(app: str = "config.asgi:application", **overrides: str) -> Server:
        with django_db_blocker.unblock():
            environment = server_environment(**overrides)
        server = start_server(environment, app)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


@dataclass
class SseMessage:
    id: str | None
    event: str
    data: Any


@dataclass
class SseReader:
    """Reads one SSE response in a background thread; events and comment lines go to queues."""

    response: httpx.Response
    events: "queue.Queue[SseMessage | None]" = field(default_factory=queue.Queue)
    comments: "queue.Queue[str]" = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        message: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.comments.put(line[1:].strip())
                elif line == "":
                    if "data" in message:
                        data = orjson.loads(message["data"])
                        self.events.put(SseMessage(message.get("id"), message.get("event", "message"), data))
                    message = {}
                else:
                    name, _, value = line.partition(":")
                    message[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self.events.put(None)

    def next_event(self, timeout: float = 5) -> SseMessage:
        message = self.events.get(timeout=timeout)
        assert message is not None, "the stream ended"
        return message

    def collect(self, count: int, timeout: float = 10) -> list[SseMessage]:
        deadline = time.monotonic() + timeout
        received = []
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                message = self.events.get(timeout=remaining)
            except queue.Empty:
                break
            if message is None:
                break
            received.append(message)
        return received

    def quiet_for(self, seconds: float) -> list[SseMessage]:
        """Events arriving within `seconds` (expected: none)."""
        return self.collect(10_000, timeout=seconds)


@pytest.fixture
def open_stream() -> Iterator[Any]:
    """open_stream(base_url, params=..., headers=...) -> (status, SseReader | json body)."""
    clients: list[httpx.Client] = []
    streams: list[Any] = []

    def open_(base_url: str, *, params: Any = None, headers: dict[str, str] | None = None, cookies: Any = None) -> Any:
        client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=30), cookies=cookies)
        clients.append(client)
        context = client.stream("GET", "/api/v1/cameras/status/stream", params=params, headers=headers)
        response = context.__enter__()
        streams.append(context)
        if response.status_code != 200:
            response.read()
            assert response.status_code != 500, response.text + "".join(server.output() for server in _servers)
            return response.status_code, response.json()
        reader = SseReader(response)
        threading.Thread(target=reader.run, daemon=True).start()
        # The stream starts with `retry:` and a ": connected" comment once the subscription is live.
        assert reader.comments.get(timeout=5) == "connected"
        return 200, reader

    yield open_
    for context in streams:
        with contextlib.suppress(Exception):
            context.__exit__(None, None, None)
    for client in clients:
        client.close()
