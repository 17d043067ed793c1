"""Telemetry ingest: our COPY path beside psql \\copy and Django bulk_create, batch latency beside a raw
COPY, HTTP end to end with 2 web workers, status-update latency; `--grow` measures ingest as data grows.

    flock /tmp/its-bench.lock .venv/bin/python bench/ingest.py [--seconds 20] [--keep]
    flock /tmp/its-bench.lock .venv/bin/python bench/ingest.py --grow [--grow-rows 30000000]

Creates its own database (`<DATABASE_NAME>_bench_ingest` next to DATABASE_URL's), migrates it,
creates the partitions and 100 cameras, and generates the rows once: 100 cameras x 30 fps for
`--seconds` seconds, 5 detections per frame, in 2,000-frame batches. Every path writes those same rows
into the same (truncated) tables, one transaction per batch writing frames and detections:

- service: telemetry.services.ingest.frames_ingest on decoded batches (camera check, summary fields,
  binary COPY of detections + frames, last_seen_at update);
- psql \\copy: the same rows as CSV files, `\\copy` into the same tables by one psql process (the reference);
- bulk_create: Django's bulk_create of the same rows (a subset: it is slow);
- raw COPY: a bare psycopg connection doing binary COPY of prebuilt rows (the floor for batch latency);
- HTTP: POST /api/v1/frames with the JSON bodies, uvicorn --workers 2, 4 concurrent keep-alive clients.

The bench database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import csv
import gc
import http.client
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import PROJECT_DIR, bench_database, free_port

DATABASE = bench_database("ingest")

import msgspec  # noqa: E402
import psycopg  # noqa: E402

CAMERAS = 100
FPS = 30
DETECTIONS_PER_FRAME = 5
BATCH = 2000
FRAME_COLUMNS = [
    "camera_id", "timestamp", "frame_number", "processing_status", "processing_time_ms", "width", "height",
    "quality_score", "detection_count", "vehicle_count", "person_count", "bicycle_count", "max_confidence",
]  # fmt: skip
DETECTION_COLUMNS = [
    "camera_id", "timestamp", "object_type", "confidence", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "track_id",
    "attributes",
]  # fmt: skip


# --- set-up ------------------------------------------------------------------------------------------


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from telemetry.services.partitions import partitions_apply

    partitions_apply()


def create_cameras() -> list[uuid.UUID]:
    from cameras.models import Camera

    cameras = Camera.objects.bulk_create([Camera(name=f"bench-camera-{n:03d}") for n in range(CAMERAS)])
    return [camera.id for camera in cameras]


@dataclass
class Workload:
    bodies: list[bytes]  # JSON bodies, as the API receives them
    batches: list[Any]  # decoded FrameBatch, as the service receives them
    frame_rows: list[list[tuple]]  # COPY rows per batch (what the service builds), for raw COPY and CSV
    detection_rows: list[list[tuple]]

    @property
    def frames(self) -> int:
        return sum(len(batch.frames) for batch in self.batches)

    @property
    def detections(self) -> int:
        return sum(len(rows) for rows in self.detection_rows)


def build_workload(camera_ids: list[uuid.UUID], seconds: float, start: datetime) -> Workload:
    from telemetry.services.batches import frames_decode
    from telemetry.services.ingest import frame_copy_rows
    from telemetry.simulation import generate_frames

    frames = list(
        generate_frames(camera_ids, fps=FPS, start=start, seconds=seconds, detections_per_frame=DETECTIONS_PER_FRAME)
    )
    bodies = [msgspec.json.encode(frames[i : i + BATCH]) for i in range(0, len(frames), BATCH)]
    batches = [frames_decode(body) for body in bodies]
    rows = [frame_copy_rows(batch) for batch in batches]
    return Workload(
        bodies=bodies,
        batches=batches,
        frame_rows=[frame for frame, _ in rows],
        detection_rows=[detection for _, detection in rows],
    )


def reset_tables() -> None:
    with psycopg.connect(DATABASE.url, autocommit=True) as conn:
        conn.execute("TRUNCATE frame_metadata, detections, telemetry_idempotency_keys")
        conn.execute("UPDATE cameras SET last_seen_at = NULL")
        conn.execute("CHECKPOINT")


# --- paths -------------------------------------------------------------------------------------------


@dataclass
class Rate:
    name: str
    frames: int
    detections: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds

    @property
    def rows_per_second(self) -> float:
        return (self.frames + self.detections) / self.seconds


def run_service(workload: Workload) -> Rate:
    from telemetry.services.ingest import frames_ingest

    reset_tables()
    started = time.perf_counter()
    for batch in workload.batches:
        frames_ingest(batch=batch)
    return Rate("service COPY (ours)", workload.frames, workload.detections, time.perf_counter() - started)


def run_service_with_decode(workload: Workload) -> Rate:
    from telemetry.services.batches import frames_decode
    from telemetry.services.ingest import frames_ingest

    reset_tables()
    started = time.perf_counter()
    for body in workload.bodies:
        frames_ingest(batch=frames_decode(body))
    return Rate("service + JSON decode", workload.frames, workload.detections, time.perf_counter() - started)


def csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bytes | msgspec.Raw):
        return bytes(value).decode()
    return value


def write_csv_files(workload: Workload, directory: Path) -> Path:
    script = io.StringIO()
    for index, (frames, detections) in enumerate(zip(workload.frame_rows, workload.detection_rows, strict=True)):
        for name, rows in (("frames", frames), ("detections", detections)):
            with open(directory / f"{name}_{index}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                for row in rows:
                    writer.writerow([csv_value(value) for value in row])
        script.write("BEGIN;\n")
        script.write(f"\\copy frame_metadata ({', '.join(FRAME_COLUMNS)}) FROM '{directory}/frames_{index}.csv' CSV\n")
        script.write(
            f"\\copy detections ({', '.join(DETECTION_COLUMNS)}) FROM '{directory}/detections_{index}.csv' CSV\n"
        )
        script.write("COMMIT;\n")
    path = directory / "copy.sql"
    path.write_text(script.getvalue())
    return path


def run_psql(workload: Workload, script: Path) -> Rate:
    reset_tables()
    started = time.perf_counter()
    subprocess.run(
        ["psql", DATABASE.url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)], check=True, stdout=subprocess.DEVNULL
    )
    return Rate("psql \\copy CSV (reference)", workload.frames, workload.detections, time.perf_counter() - started)


def frame_fields(row: tuple) -> dict[str, Any]:
    return dict(zip(FRAME_COLUMNS, row, strict=True))


def run_bulk_create(workload: Workload, batches: int) -> Rate:
    from django.db import transaction

    from telemetry.models import Detection, FrameMetadata

    reset_tables()
    frames = detections = 0
    started = time.perf_counter()
    for frame_rows, detection_rows in zip(
        workload.frame_rows[:batches], workload.detection_rows[:batches], strict=True
    ):
        with transaction.atomic():
            FrameMetadata.objects.bulk_create(
                [FrameMetadata(**frame_fields(row)) for row in frame_rows],
                batch_size=BATCH,
            )
            Detection.objects.bulk_create(
                [Detection(**dict(zip(DETECTION_COLUMNS, row, strict=True))) for row in detection_rows],
                batch_size=BATCH,
            )
        frames += len(frame_rows)
        detections += len(detection_rows)
    return Rate("Django bulk_create", frames, detections, time.perf_counter() - started)


def raw_copy(conn: psycopg.Connection, frame_rows: list[tuple], detection_rows: list[tuple] | None) -> None:
    from telemetry.services.ingest import RawJsonbBinaryDumper

    with conn.transaction(), conn.cursor() as cursor:
        cursor.adapters.register_dumper(None, RawJsonbBinaryDumper)
        columns = ", ".join(f'"{c}"' for c in FRAME_COLUMNS)
        with cursor.copy(f"COPY frame_metadata ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(
                [
                    "uuid",
                    "timestamptz",
                    "int8",
                    "text",
                    "float8",
                    "int2",
                    "int2",
                    "float8",
                    "int2",
                    "int2",
                    "int2",
                    "int2",
                    "float8",
                ]
            )
            for row in frame_rows:
                copy.write_row(row)
        if detection_rows:
            columns = ", ".join(f'"{c}"' for c in DETECTION_COLUMNS)
            with cursor.copy(f"COPY detections ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(
                    ["uuid", "timestamptz", "text", "float8", "float8", "float8", "float8", "float8", "int8", "jsonb"]
                )
                for row in detection_rows:
                    copy.write_row(row)


@dataclass
class Latency:
    name: str
    samples_ms: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def batch_latencies(workload: Workload, passes: int = 2) -> list[Latency]:
    """p50/p99 of one 2,000-frame batch: service vs raw COPY, with and without its 10,000 detections.
    Each batch is sent `passes` times (shifted by whole days, into other empty daily partitions) so p99 is
    not just the slowest of 30."""
    from telemetry.services.batches import FrameBatch
    from telemetry.services.ingest import frames_ingest

    def shifted(batch: Any, days: int) -> Any:
        frames = [msgspec.structs.replace(f, timestamp=f.timestamp + timedelta(days=days)) for f in batch.frames]
        return FrameBatch(frames, batch.detections)

    results = []
    for with_detections in (True, False):
        label = "with 10,000 detections" if with_detections else "frames only"
        service, raw = [], []
        reset_tables()
        with psycopg.connect(DATABASE.url) as conn:
            for pass_number in range(passes):
                for index, batch in enumerate(workload.batches):
                    # Alternate which path goes first so neither always meets a warmer cache.
                    order = ("service", "raw") if index % 2 == 0 else ("raw", "service")
                    for path in order:
                        if path == "service":
                            decoded = shifted(batch, 2 * pass_number)
                            if not with_detections:
                                decoded = FrameBatch(decoded.frames, [[] for _ in decoded.frames])
                            started = time.perf_counter()
                            frames_ingest(batch=decoded)
                            service.append((time.perf_counter() - started) * 1000)
                        else:
                            days = timedelta(days=2 * pass_number + 1)
                            frame_rows = [(row[0], row[1] + days, *row[2:]) for row in workload.frame_rows[index]]
                            detections = workload.detection_rows[index] if with_detections else None
                            if detections and days:
                                detections = [(row[0], row[1] + days, *row[2:]) for row in detections]
                            started = time.perf_counter()
                            raw_copy(conn, frame_rows, detections)
                            raw.append((time.perf_counter() - started) * 1000)
        results.append(Latency(f"service, {label}", service))
        results.append(Latency(f"raw COPY, {label}", raw))
    return results


# --- HTTP --------------------------------------------------------------------------------------------


def connect(port: int, timeout: float) -> http.client.HTTPConnection:
    """A keep-alive connection with Nagle off: http.client sends headers and body in two writes, and the
    second would otherwise wait for the server's delayed ACK (40 ms)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


UVICORN = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--no-access-log"]
UVICORN += ["--log-level", "warning"]


class Server:
    """Two single-process uvicorn servers on config.asgi, the clients spread over both: 2 web workers.

    Not `uvicorn --workers 2`: in that mode uvicorn binds the listening socket itself without the TCP
    protocol number, so asyncio skips TCP_NODELAY on accepted connections and every response waits
    for the client's delayed ACK (measured here: a one-frame status update 52 ms p50 with --workers 2,
    6.5 ms with one process)."""

    def __init__(self, workers: int = 2) -> None:
        self.ports = [free_port() for _ in range(workers)]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "API_INGEST_RATE_LIMIT_PER_SECOND": "0"}
        self.processes = [
            subprocess.Popen(
                [*UVICORN, "--port", str(port)],
                cwd=PROJECT_DIR,
                env=environment,
            )
            for port in self.ports
        ]
        deadline = time.monotonic() + 60
        for port, process in zip(self.ports, self.processes, strict=True):
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/health/live")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.3)

    @property
    def port(self) -> int:
        return self.ports[0]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def run_http(workload: Workload, server: Server, key: str, clients: int = 4) -> Rate:
    reset_tables()
    queue = list(enumerate(workload.bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def client(port: int) -> None:
        conn = connect(port, timeout=60)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    return
                index, body = queue.pop(0)
            conn.request("POST", "/api/v1/frames", body=body, headers={**headers, "Idempotency-Key": f"b{index}"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 201:
                failures.append(f"{response.status} {data[:200]!r}")

    threads = [
        threading.Thread(target=client, args=(server.ports[number % len(server.ports)],)) for number in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"HTTP ingest failed: {failures[:3]}")
    name = f"HTTP, {len(server.ports)} uvicorn workers, {clients} clients"
    return Rate(name, workload.frames, workload.detections, elapsed)


def status_latencies(workload: Workload, server: Server, key: str, iterations: int) -> list[Latency]:
    """One-frame status updates on a table holding the workload: the service call, and over HTTP."""
    from telemetry.services.batches import FrameStatusIn
    from telemetry.services.frames import frames_status_update

    frames = [frame for batch in workload.batches for frame in batch.frames]
    step = max(1, len(frames) // iterations)
    picks = frames[::step][:iterations]
    service = []
    for frame in picks:
        update = FrameStatusIn(camera_id=frame.camera_id, timestamp=frame.timestamp, processing_status="failed")
        started = time.perf_counter()
        result = frames_status_update(updates=[update])
        service.append((time.perf_counter() - started) * 1000)
        assert result.updated == 1
    conn = connect(server.port, timeout=10)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    over_http = []
    for frame in picks:
        body = msgspec.json.encode(
            [{"camera_id": frame.camera_id, "timestamp": frame.timestamp, "processing_status": "completed"}]
        )
        started = time.perf_counter()
        conn.request("PATCH", "/api/v1/frames/status", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        over_http.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.status
    return [Latency("status update, service", service), Latency("status update, HTTP (1 connection)", over_http)]


# --- growth ------------------------------------------------------------------------------------------


def fill_earlier_partitions(rows: int, camera_ids: list[uuid.UUID], before: datetime) -> float:
    """`rows` rows (1 frame : 5 detections) in 10 earlier daily partitions, generated by the server into
    standalone tables and attached as partitions (indexes built once, at attach: much faster than
    maintaining them row by row, and the result is the same set of indexed partitions)."""
    frames = rows // (1 + DETECTIONS_PER_FRAME)
    days = 10
    per_day = frames // days
    cameras = [str(c) for c in camera_ids]
    started = time.perf_counter()
    with psycopg.connect(DATABASE.url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for day in range(2, days + 2):  # yesterday already has a partition
            start = (before - timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
            end = start + timedelta(days=1)
            for table, count, select in (
                (
                    "frame_metadata",
                    per_day,
                    """
                    SELECT n, %(start)s::timestamptz + (n / 100) * interval '33 milliseconds', n, 'completed', 12.5,
                        1920, 1080, 0.9, 5, 3, 1, 1, 0.9, '[]'::jsonb, (%(cameras)s::uuid[])[1 + n %% 100]
                    FROM generate_series(0, %(count)s - 1) AS n
                    """,
                ),
                (
                    "detections",
                    per_day * DETECTIONS_PER_FRAME,
                    """
                    SELECT n, %(start)s::timestamptz + (n / 500) * interval '33 milliseconds',
                        (ARRAY['car', 'truck', 'person', 'bicycle', 'bus'])[1 + n %% 5], random(), x, y, x + 40, y + 30,
                        n / 5, (%(cameras)s::uuid[])[1 + (n / 5) %% 100]
                    FROM generate_series(0, %(count)s - 1) AS n,
                        LATERAL (SELECT random() * 1800 + n * 0 AS x, random() * 1000 + n * 0 AS y) AS corner
                    """,
                ),
            ):
                name = f"{table}_p{start:%Y%m%d}"
                conn.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
                conn.execute(f'INSERT INTO "{name}" {select}', {"cameras": cameras, "start": start, "count": count})
                bounds = f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                conn.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES {bounds}')
            print(f"  filled {start:%Y-%m-%d}: {per_day:,} frames, {per_day * 5:,} detections", flush=True)
        conn.execute("VACUUM ANALYZE frame_metadata")
        conn.execute("VACUUM ANALYZE detections")
    return time.perf_counter() - started


def grow(workload: Workload, camera_ids: list[uuid.UUID], grow_rows: int, decay_frames: int) -> None:
    from telemetry.services.batches import FrameBatch
    from telemetry.services.ingest import frames_ingest

    def ingest_rate(shift: timedelta) -> Rate:
        started = time.perf_counter()
        for batch in workload.batches:
            shifted = FrameBatch(
                [msgspec.structs.replace(f, timestamp=f.timestamp + shift) for f in batch.frames], batch.detections
            )
            frames_ingest(batch=shifted)
        return Rate("", workload.frames, workload.detections, time.perf_counter() - started)

    reset_tables()
    empty = ingest_rate(timedelta(0))
    print(f"empty tables: {empty.rows_per_second:,.0f} rows/s, {empty.frames_per_second:,.0f} frames/s", flush=True)
    reset_tables()
    now = workload.batches[0].frames[0].timestamp
    if grow_rows:
        seconds = fill_earlier_partitions(grow_rows, camera_ids, now)
        print(f"filled {grow_rows:,} rows into 10 earlier partitions in {seconds:.0f} s", flush=True)
    after = ingest_rate(timedelta(0))
    print(
        f"after {grow_rows:,} rows in earlier partitions: {after.rows_per_second:,.0f} rows/s "
        f"({after.rows_per_second / empty.rows_per_second:.2f} x empty; goal >= 0.90)",
        flush=True,
    )
    print("decay inside one growing partition (frames already in it -> rate of the next chunk):", flush=True)
    span = timedelta(seconds=len(workload.batches) * BATCH / (CAMERAS * FPS))
    stored = workload.frames
    round_number = 1
    while stored < decay_frames:
        rate = ingest_rate(span * round_number)
        print(
            f"  {stored:>10,} frames ({stored * 6:>11,} rows): {rate.rows_per_second:>9,.0f} rows/s "
            f"{rate.frames_per_second:>7,.0f} frames/s ({rate.rows_per_second / empty.rows_per_second:.2f} x empty)",
            flush=True,
        )
        stored += workload.frames
        round_number += 1
    with psycopg.connect(DATABASE.url) as conn:
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size(%s) + pg_total_relation_size(%s))",
            [f"frame_metadata_p{now:%Y%m%d}", f"detections_p{now:%Y%m%d}"],
        ).fetchone()[0]
    print(f"the growing partition (frames + detections, with indexes): {size}")


# --- report ------------------------------------------------------------------------------------------


def machine() -> str:
    with psycopg.connect(DATABASE.url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return (
        f"{os.cpu_count()} cores, PostgreSQL {version}, shared_buffers {buffers}; client, server and DB share the cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds of fleet traffic (100 cameras x 30 fps)")
    parser.add_argument("--bulk-create-batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of psql, service and HTTP")
    parser.add_argument("--status-iterations", type=int, default=1000)
    parser.add_argument("--grow", action="store_true", help="measure ingest as data grows instead")
    parser.add_argument("--grow-rows", type=int, default=30_000_000)
    parser.add_argument("--decay-frames", type=int, default=3_000_000)
    parser.add_argument(
        "--drop-index", action="append", default=[], help="with --grow: measure without this index (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    DATABASE.recreate()
    try:
        setup_django()
        camera_ids = create_cameras()
        start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
        workload = build_workload(camera_ids, args.seconds, start)
        gc.collect()
        gc.freeze()  # as the web processes do (telemetry.apps): the workload is long-lived
        print(
            f"workload: {workload.frames:,} frames + {workload.detections:,} detections in "
            f"{len(workload.batches)} batches of {BATCH:,}; {machine()}",
            flush=True,
        )
        if args.grow:
            with psycopg.connect(DATABASE.url, autocommit=True) as conn:
                for index in args.drop_index:
                    conn.execute(f'DROP INDEX "{index}"')
                    print(f"without {index}", flush=True)
            grow(workload, camera_ids, args.grow_rows, args.decay_frames)
            return
        benchmark(workload, args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            DATABASE.drop()


def benchmark(workload: Workload, args: argparse.Namespace) -> None:
    from its_camera.choices import ApiScope
    from its_camera.services.api_keys import api_key_create
    from telemetry.services.ingest import frames_ingest

    key = api_key_create(name="bench", scopes=list(ApiScope.values)).raw_key
    server = Server(workers=2)
    rates: dict[str, list[Rate]] = {"service": [], "psql": [], "http": []}
    try:
        with tempfile.TemporaryDirectory() as directory:
            script = write_csv_files(workload, Path(directory))
            # Rounds of every path, interleaved, median of the rounds: the machine is shared, and its
            # load drifts over minutes; within a round the paths see the same conditions.
            for round_number in range(args.rounds):
                rates["psql"].append(run_psql(workload, script))
                rates["service"].append(run_service(workload))
                rates["http"].append(run_http(workload, server, key))
                print(
                    f"  round {round_number + 1}: psql {rates['psql'][-1].rows_per_second:,.0f}, "
                    f"service {rates['service'][-1].rows_per_second:,.0f}, "
                    f"HTTP {rates['http'][-1].rows_per_second:,.0f} rows/s",
                    flush=True,
                )
        decoded = run_service_with_decode(workload)
        bulk = run_bulk_create(workload, args.bulk_create_batches)
        latencies = batch_latencies(workload)
        reset_tables()
        for batch in workload.batches:  # the status updates address stored frames
            frames_ingest(batch=batch)
        status = status_latencies(workload, server, key, args.status_iterations)
    finally:
        server.stop()

    def median(name: str) -> Rate:
        ordered = sorted(rates[name], key=lambda rate: rate.rows_per_second)
        return ordered[len(ordered) // 2]

    service, psql, http_rate = median("service"), median("psql"), median("http")
    ratios = [s.rows_per_second / p.rows_per_second for s, p in zip(rates["service"], rates["psql"], strict=True)]
    print()
    print(f"Ingest throughput ({machine()})")
    print(f"{'path':<40} {'rows/s':>10} {'frames/s':>10} {'x psql':>8} {'x bulk_create':>14}")
    for rate in (psql, service, decoded, bulk, http_rate):
        print(
            f"{rate.name:<40} {rate.rows_per_second:>10,.0f} {rate.frames_per_second:>10,.0f} "
            f"{rate.rows_per_second / psql.rows_per_second:>8.2f} {rate.rows_per_second / bulk.rows_per_second:>14.1f}"
        )
    print(f"service / psql per round: {', '.join(f'{ratio:.2f}' for ratio in ratios)}")
    print(
        f"goals: service >= 1.1 x psql: {service.rows_per_second / psql.rows_per_second:.2f}; "
        f">= 5 x bulk_create: {service.rows_per_second / bulk.rows_per_second:.1f}; "
        f"HTTP >= 0.6 x service frames/s: {http_rate.frames_per_second / service.frames_per_second:.2f}"
    )
    print()
    samples = len(latencies[0].samples_ms)
    print(f"Latency ({samples} batches of {BATCH:,} frames per path; {args.status_iterations} status updates)")
    print(f"{'what':<52} {'p50 ms':>8} {'p99 ms':>8}")
    for latency in latencies + status:
        print(f"{latency.name:<52} {latency.percentile(0.5):>8.1f} {latency.percentile(0.99):>8.1f}")
    for label in ("with 10,000 detections", "frames only"):
        ours = next(x for x in latencies if x.name == f"service, {label}")
        raw = next(x for x in latencies if x.name == f"raw COPY, {label}")
        print(f"goal p99 <= 1.2 x raw COPY, {label}: {ours.percentile(0.99) / raw.percentile(0.99):.2f}")
    print(f"goal status update p99 < 3 ms: service {status[0].percentile(0.99):.2f} ms")


if __name__ == "__main__":
    main()
