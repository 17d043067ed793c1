"""`GET /api/v1/cameras/status/stream` served by real uvicorn processes, read by a real HTTP client."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from django.contrib.auth.models import Permission
from django.test import Client

from cameras.status_events import CAMERA_STATUS, camera_status_sweep
from its_camera import events
from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create
from tests.cameras.factories import make_camera, make_zone

from .conftest import SseMessage, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def read_key() -> dict[str, str]:
    return {"X-API-Key": api_key_create(name="live reader", scopes=[ApiScope.CAMERAS_READ]).raw_key}


def write_key() -> dict[str, str]:
    return {"X-API-Key": api_key_create(name="camera", scopes=[ApiScope.CAMERAS_WRITE]).raw_key}


def publish(camera_id: str = "", zone_id: str | None = None, status: str = "online", connection: str = "streaming"):
    return events.event_publish(
        type=CAMERA_STATUS,
        data={
            "camera_id": camera_id or str(uuid.uuid4()),
            "zone_id": zone_id,
            "status": status,
            "connection_status": connection,
            "previous": None,
        },
    )


def test_a_heartbeat_on_one_server_reaches_subscribers_of_both(live_servers, live_redis, open_stream):
    # Given a stale camera the sweep has recorded, and a subscriber on each of two server processes
    zone = make_zone(name="North")
    camera = make_camera(zone=zone, last_seen_at=None)
    camera_status_sweep()
    headers = read_key()
    _, on_a = open_stream(live_servers.a.url, headers=headers)
    _, on_b = open_stream(live_servers.b.url, headers=headers)

    # When the camera sends a heartbeat to server A
    response = httpx.post(
        f"{live_servers.a.url}/api/v1/cameras/{camera.pk}/heartbeat", json={"status": "online"}, headers=write_key()
    )
    assert response.status_code == 200, response.text

    # Then both subscribers hear that it is streaming again, with the same event id
    first, second = on_a.next_event(), on_b.next_event()
    assert first.event == second.event == "camera.status"
    assert first.id == second.id
    assert first.data["camera_id"] == str(camera.pk)
    assert first.data["zone_id"] == str(zone.pk)
    assert first.data["connection_status"] == "streaming"
    assert first.data["previous"]["connection_status"] == "stale"
    # And a second heartbeat changes nothing, so publishes nothing
    httpx.post(f"{live_servers.a.url}/api/v1/cameras/{camera.pk}/heartbeat", json={}, headers=write_key())
    assert on_a.quiet_for(1.0) == []


def test_reconnecting_with_last_event_id_replays_what_was_missed(live_servers, live_redis, open_stream):
    # Given a subscriber that received one event and went away
    headers = read_key()
    _, reader = open_stream(live_servers.a.url, headers=headers)
    seen = publish()
    assert reader.next_event().id == str(seen)
    reader.response.close()

    # When three events are published while it is gone, and it reconnects to the other server
    missed = [publish(), publish(), publish()]
    _, again = open_stream(live_servers.b.url, headers={**headers, "Last-Event-ID": str(seen)})

    # Then it gets exactly the missed ones, in order, then live ones
    assert [int(message.id) for message in again.collect(3)] == missed
    live = publish()
    assert again.next_event().id == str(live)


def test_an_id_older_than_the_buffer_gets_a_reset_then_what_is_left(live_servers, live_redis, open_stream):
    # Given five events, of which the buffer kept only the last two
    ids = [publish() for _ in range(5)]
    live_redis.xtrim(events.STREAM_KEY, maxlen=2, approximate=False)

    # When a client resumes after the first one
    _, reader = open_stream(live_servers.a.url, headers=read_key(), params={"last_event_id": ids[0]})

    # Then it is told to reload its snapshot, and gets the two buffered events
    reset = reader.next_event()
    assert reset.event == "stream.reset"
    assert reset.data == {"reason": "gap", "last_event_id": ids[-1]}
    assert [int(message.id) for message in reader.collect(2)] == ids[-2:]


def test_filters_by_zone_camera_status_and_type(live_servers, live_redis, open_stream):
    north, south = str(uuid.uuid4()), str(uuid.uuid4())
    watched = str(uuid.uuid4())
    headers = read_key()
    _, by_zone = open_stream(live_servers.a.url, headers=headers, params={"zone": north})
    _, by_camera = open_stream(live_servers.a.url, headers=headers, params={"camera": watched})
    _, by_status = open_stream(live_servers.b.url, headers=headers, params={"status": "stale"})
    _, alerts_only = open_stream(live_servers.b.url, headers=headers, params={"type": "alert"})

    in_north = publish(zone_id=north)
    in_south_stale = publish(zone_id=south, connection="stale")
    of_watched = publish(camera_id=watched, zone_id=south)
    alert = events.event_publish(type="alert.raised", data={"camera_id": watched, "zone_id": north, "kind": "x"})

    assert [int(m.id) for m in by_zone.collect(2)] == [in_north, alert]
    assert [int(m.id) for m in by_camera.collect(2)] == [of_watched, alert]
    assert [int(m.id) for m in by_status.collect(2)] == [in_south_stale, alert]  # status does not filter alerts
    assert [int(m.id) for m in alerts_only.collect(1)] == [alert]
    for reader in (by_zone, by_camera, by_status, alerts_only):
        assert reader.quiet_for(0.3) == []


def test_an_idle_stream_gets_heartbeat_comments(live_servers, live_redis, open_stream):
    _, reader = open_stream(live_servers.a.url, headers=read_key())

    time.sleep(1.6)  # heartbeat every 0.5 s on the test servers

    comments = []
    while not reader.comments.empty():
        comments.append(reader.comments.get())
    assert comments.count("heartbeat") >= 2
    assert reader.events.empty()


def raw_stream_request(base_url: str, headers: dict[str, str]) -> socket.socket:
    """A client that sends the request and then never reads (a tiny receive buffer fills at once)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    lines = ["GET /api/v1/cameras/status/stream HTTP/1.1", f"Host: {host}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def test_a_slow_client_does_not_delay_a_fast_one_and_catches_up_by_replay(live_servers, live_redis, open_stream):
    # Given a client that stops reading and one that reads, on the same server process
    headers = read_key()
    slow = raw_stream_request(live_servers.a.url, headers)
    _, fast = open_stream(live_servers.a.url, headers=headers)

    # When events of 4 KB are published in bursts of 25 (half a subscriber's queue of 50) until the slow client's
    # socket buffers and queue are full. The next burst waits for the fast client to have read the last one, so a
    # loaded machine slows the test down but cannot overflow the fast client's queue.
    ids: list[int] = []
    received: list[SseMessage] = []
    dropped = ""
    while not dropped and len(ids) < 5000:
        for _ in range(10):
            burst = [
                events.event_publish(type=CAMERA_STATUS, data={"camera_id": str(uuid.uuid4()), "padding": "x" * 4096})
                for _ in range(25)
            ]
            ids += burst
            # The fast client gets each burst while the slow one reads nothing: the server never waits for it.
            received += fast.collect(len(burst), timeout=20)
            assert [int(message.id) for message in received] == ids, "the fast client missed or lagged events"
        scrape = httpx.get(f"{live_servers.a.url}/metrics", timeout=20).text
        dropped = re.search(r'its_live_subscribers_dropped_total\{reason="slow"\} ([1-9])', scrape) and scrape

    # Then the server dropped the slow one from the fan-out, and only that one: the fast one is still streaming
    assert dropped, f"the slow client was never dropped after {len(ids)} events"
    assert not fast.ended.is_set()
    assert [int(message.id) for message in received] == ids

    # And when the slow client finally reads, its stream ends with what it had, and it resumes from there
    slow.settimeout(20)
    data = b""
    while chunk := slow.recv(65536):
        data += chunk
        if b": closed: slow" in data:
            break
    slow.close()
    assert b": closed: slow" in data
    got = [int(value) for value in re.findall(rb"\nid: (\d+)", data)]
    assert got == ids[: len(got)]
    assert len(got) < len(ids)
    _, resumed = open_stream(live_servers.b.url, headers={**headers, "Last-Event-ID": str(got[-1])})
    assert [int(message.id) for message in resumed.collect(len(ids) - len(got), timeout=20)] == ids[len(got) :]


def test_with_redis_down_the_stream_answers_503_json_and_the_api_keeps_serving(extra_server, live_redis):
    # Given a server whose Redis does not answer
    server = extra_server(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    camera = make_camera(last_seen_at=None)

    # When a client subscribes
    started = time.monotonic()
    response = httpx.get(f"{server.url}/api/v1/cameras/status/stream", headers=read_key(), timeout=10)

    # Then it is told at once, in JSON, to come back later
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "unavailable" in response.json()["detail"]
    # And the API still answers, heartbeats included (their events are dropped, not their writes)
    heartbeat = httpx.post(f"{server.url}/api/v1/cameras/{camera.pk}/heartbeat", json={}, headers=write_key())
    assert heartbeat.status_code == 200
    camera.refresh_from_db()
    assert camera.last_seen_at is not None
    assert httpx.get(f"{server.url}/api/v1/cameras/{camera.pk}", headers=read_key()).status_code == 200


class OwnRedis:
    """A Redis server of this test's own, on a fixed port, so it can be stopped and started again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = Path(tempfile.mkdtemp(prefix="its-live-redis-"))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            # Debian's redis-server (jemalloc) cannot start under the libfaketime `make test-clock` preloads; the
            # outage tests need a Redis they can stop, not a fake clock in it.
            env={name: value for name, value in os.environ.items() if name != "LD_PRELOAD"},
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(binary)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=10)
    shutil.rmtree(server.workdir, ignore_errors=True)


def test_when_redis_dies_streams_end_503_follows_and_streaming_resumes_when_it_returns(
    extra_server, own_redis, open_stream, settings, live_redis
):
    # Given a server on a Redis that then dies
    server = extra_server(REDIS_URL=own_redis.url)
    _, reader = open_stream(server.url, headers=read_key())
    own_redis.kill()

    # Then open streams end, and new subscribers are told to come back later
    assert reader.ended.wait(timeout=5), "the stream should end when Redis goes away"
    status, body = open_stream(server.url, headers=read_key())
    assert status == 503
    assert "unavailable" in body["detail"]

    # And when Redis is back, subscribing works again and events flow, without restarting the server
    own_redis.start()
    status, again = open_stream(server.url, headers=read_key())
    assert status == 200
    settings.LIVE_EVENTS_REDIS_URL = own_redis.url
    event_id = events.event_publish(type="alert.raised", data={"kind": "after the outage"})
    message = again.next_event()
    assert (message.id, message.data) == (str(event_id), {"kind": "after the outage"})


def test_auth_and_validation_errors_are_json(live_servers, live_redis, open_stream, django_user_model):
    base = live_servers.a.url
    assert open_stream(base)[0] == 401
    no_scope = {"X-API-Key": api_key_create(name="writer", scopes=[ApiScope.TELEMETRY_WRITE]).raw_key}
    status, body = open_stream(base, headers=no_scope)
    assert (status, body["detail"]) == (403, "This API key lacks the scope(s): cameras:read")
    status, body = open_stream(base, headers=read_key(), params={"zone": "north", "status": "sleeping"})
    assert status == 422
    assert set(body["detail"]) == {"zone", "status"}
    status, body = open_stream(base, headers={**read_key(), "Last-Event-ID": "abc"})
    assert status == 422
    assert httpx.post(f"{base}/api/v1/cameras/status/stream", headers=read_key()).json() == {
        "detail": "Method Not Allowed"
    }


def session_cookies(django_user_model, *, is_staff: bool, permissions: tuple[str, ...] = ("view_camera",)) -> dict:
    user = django_user_model.objects.create_user(f"user-{uuid.uuid4().hex[:8]}", password="x", is_staff=is_staff)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="cameras", codename__in=permissions))
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def test_the_admin_session_of_a_staff_user_may_subscribe(live_servers, live_redis, open_stream, django_user_model):
    status, reader = open_stream(live_servers.a.url, cookies=session_cookies(django_user_model, is_staff=True))
    assert status == 200
    event_id = publish()
    assert reader.next_event().id == str(event_id)

    status, _body = open_stream(live_servers.a.url, cookies=session_cookies(django_user_model, is_staff=False))
    assert status == 401


def test_a_staff_session_without_the_camera_view_permission_may_not_subscribe(
    live_servers, live_redis, open_stream, django_user_model
):
    # Given a staff user with no model permissions at all
    cookies = session_cookies(django_user_model, is_staff=True, permissions=())

    # When they open the stream, then it is refused with the permission it needs
    status, _body = open_stream(live_servers.a.url, cookies=cookies)
    assert status == 403


def test_open_streams_do_not_hold_pooled_connections(live_servers, live_redis, open_stream):
    # Given more open streams on one process than its pool has connections (test pool: at most 4)
    headers = read_key()
    readers = [open_stream(live_servers.a.url, headers=headers)[1] for _ in range(6)]

    # When the same process serves API requests
    started = time.monotonic()
    responses = [httpx.get(f"{live_servers.a.url}/api/v1/whoami", headers=headers, timeout=15) for _ in range(3)]

    # Then they get a connection at once, and the streams still deliver
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert time.monotonic() - started < 5
    event_id = publish()
    assert {reader.next_event().id for reader in readers} == {str(event_id)}


def metric_value(scrape: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", scrape, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_sum_every_web_process(live_servers, live_redis):
    # Given requests answered by each of two processes sharing one multiprocess directory
    headers = read_key()
    route = 'method="GET",route="api/v1/whoami",status="200"'
    before = metric_value(httpx.get(f"{live_servers.a.url}/metrics").text, "its_http_requests_total", route)
    for _ in range(3):
        httpx.get(f"{live_servers.a.url}/api/v1/whoami", headers=headers)
    for _ in range(2):
        httpx.get(f"{live_servers.b.url}/api/v1/whoami", headers=headers)

    # When either process is scraped
    scrape = httpx.get(f"{live_servers.b.url}/metrics").text

    # Then the counts of both are in it, with the latency histogram and the pool of each process
    assert metric_value(scrape, "its_http_requests_total", route) == before + 5
    assert metric_value(scrape, "its_http_request_duration_seconds_count", 'method="GET",route="api/v1/whoami"') >= 5
    assert metric_value(scrape, "its_db_pool_connections", 'state="max"') == 8  # 4 per process, 2 processes
