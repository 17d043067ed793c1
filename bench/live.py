"""Live status: what publishing costs the heartbeat path, how fast events reach subscribers on two web
processes, and what the 10-second sweep costs at 10,000 cameras.

    flock /tmp/its-bench.lock .venv/bin/python bench/live.py [--cameras 10000] [--subscribers 200]
                                                             [--events 400] [--iterations 2000] [--keep]

Creates its own database (`<DATABASE_NAME>_bench_live` next to DATABASE_URL's) and uses Redis database 15
of REDIS_URL's server (flushed), seeds `--cameras` cameras in 50 zones, then prints, each beside its
reference path:

1. heartbeat: the service `camera_heartbeat` (UPDATE + the live hook: one Redis HGET when the camera's
   live state did not change) vs the same UPDATE alone;
2. publish: `event_publish` (one Lua script: sequence, buffer append with MAXLEN, PUBLISH) vs a bare
   Redis PUBLISH of the same payload;
3. fan-out: events published at a steady rate reach `--subscribers` SSE clients split over two uvicorn
   processes: delivery latency publish -> client parsed the event, vs a bare Redis pub/sub subscriber
   in the bench process (the floor);
4. sweep: `camera_status_sweep` over every camera when nothing changed and when every camera changed,
   vs the bare query of the realtime view.

Client, servers, Redis and PostgreSQL share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from _support import PROJECT_DIR, bench_database, free_port

redis_parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
BENCH_REDIS_URL = urlunsplit(redis_parts._replace(path="/15"))
DATABASE = bench_database("live", REDIS_URL=BENCH_REDIS_URL)

import orjson  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed_pair(ours: Callable[[], object], reference: Callable[[], object], iterations: int) -> tuple[list, list]:
    """Alternate the two calls, so both see the same load from whatever else shares the machine."""
    ours_samples: list[float] = []
    reference_samples: list[float] = []
    for _ in range(iterations):
        for call, samples in ((ours, ours_samples), (reference, reference_samples)):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
    return ours_samples, reference_samples


def row(what: str, ours: list[float], reference: list[float], unit: str = "ms") -> None:
    o50, o99 = percentiles(ours)
    r50, r99 = percentiles(reference)
    print(
        f"| {what} | {o50:.3f} / {o99:.3f} {unit} | {r50:.3f} / {r99:.3f} {unit} "
        f"| {o50 / r50:.2f}x / {o99 / r99:.2f}x |"
    )


def prepare_database(cameras: int) -> None:
    DATABASE.recreate()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=PROJECT_DIR, check=True)
    import django

    django.setup()
    from django.utils import timezone

    from cameras.models import Camera, Zone

    zones = Zone.objects.bulk_create([Zone(name=f"Zone {n:02d}") for n in range(50)])
    now = timezone.now()
    Camera.objects.bulk_create(
        [
            Camera(
                name=f"CAM-{n:05d}", zone=zones[n % 50], status="online", last_seen_at=now - timedelta(seconds=n % 600)
            )
            for n in range(cameras)
        ],
        batch_size=2000,
    )


def start_server() -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning"],
        cwd=PROJECT_DIR,
        env={**os.environ, "LIVE_EVENTS_HEARTBEAT_SECONDS": "5"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.1)
    raise RuntimeError("uvicorn did not start")


async def sse_client(port: int, key: str, latencies: list[float], ready: asyncio.Event, count: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /api/v1/cameras/status/stream?type=alert HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b": connected"):
            count[0] += 1
            if count[0] == count[1]:
                ready.set()
        elif line.startswith(b"data: "):
            latencies.append((time.time() - orjson.loads(line[6:])["sent"]) * 1000)


async def fan_out(subscribers: int, events: int, key: str, ports: list[int]) -> tuple[list[float], list[float], int]:
    from its_camera import events as live_events

    latencies: list[float] = []
    floor: list[float] = []
    ready = asyncio.Event()
    count = [0, subscribers]
    clients = [
        asyncio.create_task(sse_client(ports[n % len(ports)], key, latencies, ready, count)) for n in range(subscribers)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    bare = aioredis.Redis.from_url(BENCH_REDIS_URL)
    pubsub = bare.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(live_events.CHANNEL)

    async def read_floor() -> None:
        while len(floor) < events:
            message = await pubsub.get_message(timeout=1.0)
            if message:
                payload = message["data"].split(b"\n", 2)[2]
                floor.append((time.time() - orjson.loads(payload)["sent"]) * 1000)

    floor_task = asyncio.create_task(read_floor())
    loop = asyncio.get_running_loop()
    for _ in range(events):  # 100 events/s, published from a thread as the web/worker processes would
        await loop.run_in_executor(
            None, lambda: live_events.event_publish(type="alert.raised", data={"sent": time.time(), "kind": "bench"})
        )
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + 10
    while len(latencies) < events * subscribers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.wait_for(floor_task, 10)
    for client in clients:
        client.cancel()
    await bare.aclose()
    return latencies, floor, len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    prepare_database(args.cameras)
    from django.db import connection
    from django.utils import timezone

    from cameras.models import Camera
    from cameras.services.cameras import camera_heartbeat
    from cameras.status_events import camera_status_sweep
    from its_camera import events as live_events
    from its_camera.services.api_keys import api_key_create

    servers = []
    try:
        print(f"cameras {args.cameras}, subscribers {args.subscribers}, events {args.events}\n")
        print("| what | ours p50 / p99 | reference p50 / p99 | ratio p50 / p99 |")
        print("|---|---|---|---|")

        # 4. the sweep first: its baseline is what makes heartbeats publish at all
        first = time.perf_counter()
        camera_status_sweep()
        baseline_s = time.perf_counter() - first

        def view_query() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM realtime_camera_status ORDER BY id")
                cursor.fetchall()

        unchanged, view = timed_pair(camera_status_sweep, view_query, 20)
        # 1. heartbeats of cameras already streaming: the common case
        ids = list(Camera.objects.values_list("pk", flat=True)[:200])
        Camera.objects.filter(pk__in=ids).update(last_seen_at=timezone.now())
        camera_status_sweep()
        cycle = itertools.cycle(ids)
        ours_hb, reference_hb = timed_pair(
            lambda: camera_heartbeat(camera_id=next(cycle), status="online", fps=25.0),
            lambda: Camera.objects.filter(pk=next(cycle)).update(
                last_seen_at=timezone.now(), status="online", last_fps=25.0
            ),
            args.iterations,
        )
        row("heartbeat service (UPDATE + live hook) vs UPDATE alone", ours_hb, reference_hb)
        # 2. publishing
        bare = redis.Redis.from_url(BENCH_REDIS_URL)
        payload = {"camera_id": str(uuid.uuid4()), "status": "online", "connection_status": "streaming"}
        ours_pub, reference_pub = timed_pair(
            lambda: live_events.event_publish(type="camera.status", data=payload),
            lambda: bare.publish("bench", orjson.dumps(payload)),
            args.iterations,
        )
        row("event_publish (Lua: seq + XADD MAXLEN + PUBLISH) vs PUBLISH", ours_pub, reference_pub)
        # every camera changes (e.g. after an outage): the sweep publishes one event per camera
        Camera.objects.update(last_seen_at=timezone.now() - timedelta(hours=1))
        started = time.perf_counter()
        changed = camera_status_sweep()
        all_changed_s = time.perf_counter() - started
        row("sweep, nothing changed vs the bare view query", unchanged, view)
        print(
            f"| sweep, every camera changed ({changed.published} events) | {all_changed_s * 1000:.0f} ms | "
            f"baseline run {baseline_s * 1000:.0f} ms | |"
        )

        # 3. fan-out over two web processes
        key = api_key_create(name="bench", scopes=["cameras:read"]).raw_key
        servers = [start_server(), start_server()]
        latencies, floor, delivered = asyncio.run(
            fan_out(args.subscribers, args.events, key, [port for _, port in servers])
        )
        row(f"delivery to {args.subscribers} SSE clients on 2 processes vs a bare pub/sub subscriber", latencies, floor)
        expected = args.subscribers * args.events
        print(f"\ndelivered {delivered} of {expected} events ({delivered / expected:.1%}), 100 events/s")
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=10)
        connection.close()
        if not args.keep:
            DATABASE.drop()


if __name__ == "__main__":
    main()
