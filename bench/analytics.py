"""Analytics from rollups vs the same answers from the raw partitions, and the rollup refresh rate.

    flock /tmp/its-bench.lock .venv/bin/python bench/analytics.py [--frames 30000000] [--days 30] [--cameras 100]
                                                                  [--iterations 200] [--keep]

Creates its own database (`<DATABASE_NAME>_bench_analytics` next to DATABASE_URL's), migrates it, creates
daily partitions for the whole range, and loads `--frames` frame rows spread evenly over `--days` days and
`--cameras` cameras in 10 zones, with 0-2 detection rows per frame (1 on average), generated in Python and
written with COPY (text) in time order, as ingest would leave them. Then:

1. builds the rollups from scratch with the beat job's service (`rollups_refresh` from the first partition to
   the end of the data) and prints the refresh rate in raw rows (frames + detections) per second, and the cost
   of one steady-state run (a minute of new frames, the current hour re-aggregated);
2. times each analytics answer three ways, on random cameras / zones / windows:
   - raw: the same aggregate computed from the raw partitions (the reference, the seed's path);
   - rollups: the selector the API calls (telemetry/selectors/analytics.py);
   - API: the endpoint through Django's test client in-process (auth, validation, serialisation);
   hourly = one camera, last 24 hours; daily = one zone, last 7 days; detections = the fleet, per hour and
   object type, last 24 hours.

Goals (SPEC §6): from rollups < 20 / < 50 / < 50 ms, flat as raw volume grows; seed < 100 / < 500 / < 200 ms.
The bench database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from _support import bench_database

# The raw reference queries and the build run long.
DATABASE = bench_database("analytics", DB_STATEMENT_TIMEOUT_MS="3600000")


OBJECT_TYPES = ["car", "car", "car", "person", "truck", "bus", "bicycle", "motorcycle"]
GOALS_MS = {"hourly": 20.0, "daily": 50.0, "detections": 50.0}
SEED_MS = {"hourly": 100.0, "daily": 500.0, "detections": 200.0}


def setup_django(days: int) -> None:
    os.environ["TELEMETRY_PARTITIONS_BEHIND"] = str(days + 1)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from telemetry.services.partitions import partitions_apply

    partitions_apply()


def seed_fleet(camera_count: int) -> tuple[list[uuid.UUID], dict[uuid.UUID, list[uuid.UUID]]]:
    from cameras.models import Camera, Zone

    zones = Zone.objects.bulk_create([Zone(name=f"zone-{n}") for n in range(10)])
    cameras = Camera.objects.bulk_create(
        [Camera(name=f"cam-{n:03d}", zone=zones[n % len(zones)]) for n in range(camera_count)]
    )
    by_zone: dict[uuid.UUID, list[uuid.UUID]] = {zone.id: [] for zone in zones}
    for camera in cameras:
        assert camera.zone_id is not None
        by_zone[camera.zone_id].append(camera.id)
    return [camera.id for camera in cameras], by_zone


def load(camera_ids: list[uuid.UUID], *, frames: int, start: datetime, end: datetime, rng: random.Random) -> int:
    """COPY `frames` frames (time order, every camera in turn) and their detections; returns detection rows."""
    from django.db import connection

    steps = frames // len(camera_ids)
    interval = (end - start).total_seconds() / steps
    camera_text = [str(camera_id) for camera_id in camera_ids]
    processing = [f"{rng.lognormvariate(3.0, 0.5):.3f}" for _ in range(4096)]
    detections_total = 0
    chunk_steps = max(1, 200_000 // len(camera_ids))
    connection.ensure_connection()
    raw = connection.connection
    started = time.perf_counter()
    with raw.cursor() as cursor:
        for chunk_start in range(0, steps, chunk_steps):
            frame_buffer = io.StringIO()
            detection_buffer = io.StringIO()
            for step in range(chunk_start, min(steps, chunk_start + chunk_steps)):
                base = start + timedelta(seconds=step * interval)
                for index, camera in enumerate(camera_text):
                    moment = (base + timedelta(microseconds=index * 997)).isoformat()
                    failed = rng.random() < 0.05
                    count = rng.choice((0, 1, 1, 2))
                    time_ms = "\\N" if failed and rng.random() < 0.5 else processing[rng.getrandbits(12)]
                    frame_buffer.write(
                        f"{camera}\t{moment}\t{step}\t{'failed' if failed else 'completed'}\t{time_ms}\t"
                        f"{count}\t0\t0\t0\n"
                    )
                    for n in range(count):
                        detection_buffer.write(
                            f"{camera}\t{moment}\t{OBJECT_TYPES[(step + index + n) % 8]}\t0.{50 + (step + n) % 50}\t"
                            f"0\t0\t10\t10\t\\N\n"
                        )
                        detections_total += 1
            with cursor.copy(
                "COPY frame_metadata (camera_id, timestamp, frame_number, processing_status, processing_time_ms, "
                "detection_count, vehicle_count, person_count, bicycle_count) FROM STDIN"
            ) as copy:
                copy.write(frame_buffer.getvalue())
            with cursor.copy(
                "COPY detections (camera_id, timestamp, object_type, confidence, bbox_x1, bbox_y1, bbox_x2, "
                "bbox_y2, track_id) FROM STDIN"
            ) as copy:
                copy.write(detection_buffer.getvalue())
            raw.commit()
            done = min(steps, chunk_start + chunk_steps) * len(camera_ids)
            elapsed = time.perf_counter() - started
            print(f"\r  loaded {done:,} frames in {elapsed:.0f} s ({done / elapsed:,.0f} frames/s)", end="", flush=True)
    print()
    with raw.cursor() as cursor:
        cursor.execute("ANALYZE frame_metadata")
        cursor.execute("ANALYZE detections")
    raw.commit()
    return detections_total


def timed(function: Callable[[], object], iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99


def raw_query(sql: str, params: list) -> Callable[[], object]:
    from django.db import connection

    def run() -> object:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


RAW_HOURLY = """
SELECT date_trunc('hour', timestamp, 'UTC'), count(*), count(*) FILTER (WHERE processing_status = 'failed'),
       avg(processing_time_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms),
       max(processing_time_ms), sum(detection_count)
FROM frame_metadata WHERE camera_id = %s AND timestamp >= %s AND timestamp < %s GROUP BY 1 ORDER BY 1
"""
RAW_DAILY = """
SELECT date_trunc('day', f.timestamp, 'UTC'), count(*), count(*) FILTER (WHERE processing_status = 'failed'),
       avg(processing_time_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms),
       max(processing_time_ms), sum(detection_count)
FROM frame_metadata f JOIN cameras c ON c.id = f.camera_id
WHERE c.zone_id = %s AND f.timestamp >= %s AND f.timestamp < %s GROUP BY 1 ORDER BY 1
"""
RAW_DETECTIONS = """
SELECT date_trunc('hour', timestamp, 'UTC'), object_type, count(*), avg(confidence)
FROM detections WHERE timestamp >= %s AND timestamp < %s GROUP BY 1, 2 ORDER BY 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=200, help="timed runs of each rollup query")
    parser.add_argument("--raw-iterations", type=int, default=10, help="timed runs of each raw reference query")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    rng = random.Random(20261125)  # reproducible bench data

    DATABASE.recreate()
    try:
        setup_django(args.days)
        run(args, rng)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            DATABASE.drop()


def run(args: argparse.Namespace, rng: random.Random) -> None:
    from django.test import Client
    from django.utils import timezone

    from its_camera.services.api_keys import api_key_create
    from telemetry.models import RollupWatermark
    from telemetry.selectors.analytics import AnalyticsScope, analytics_detections, analytics_frames
    from telemetry.services.rollups import RollupPolicy, rollups_refresh

    end = timezone.now().replace(second=0, microsecond=0)
    start = (end - timedelta(days=args.days)).replace(hour=0, minute=0)
    camera_ids, by_zone = seed_fleet(args.cameras)
    print(f"Loading {args.frames:,} frames over {args.days} days ({start:%Y-%m-%d} .. {end:%Y-%m-%d %H:%M}), "
          f"{args.cameras} cameras in {len(by_zone)} zones ...")  # fmt: skip
    load_started = time.perf_counter()
    detections = load(camera_ids, frames=args.frames, start=start, end=end, rng=rng)
    frames = args.frames // args.cameras * args.cameras
    print(f"  {frames:,} frames + {detections:,} detections in {time.perf_counter() - load_started:.0f} s")

    # 1. Build the rollups the way the beat job does, from the first partition.
    RollupWatermark.objects.create(name="telemetry", watermark=start)
    policy = RollupPolicy.from_settings()
    # A backfill: one unbounded run, ROLLUP_MAX_SPAN_HOURS (default 1, as the beat job) of event time per step.
    span = timedelta(hours=int(os.environ.get("ROLLUP_MAX_SPAN_HOURS", "1")))
    policy = RollupPolicy(**{**policy.__dict__, "max_steps": 100_000, "time_budget_seconds": 1e9, "max_span": span})
    build = rollups_refresh(now=end, policy=policy)
    raw_rows = frames + detections
    print(f"  rollups built: {build.steps} steps of {span}, {build.rows:,} rollup rows in {build.seconds:.1f} s")
    # One steady-state run: a minute of new frames for every camera, then the per-minute job.
    from django.db import connection

    with connection.cursor() as cursor:
        minute = [(camera_id, end + timedelta(seconds=s)) for camera_id in camera_ids for s in range(0, 60, 9)]
        cursor.executemany(
            "INSERT INTO frame_metadata (camera_id, timestamp, processing_status, processing_time_ms, frame_number, "
            "detection_count, vehicle_count, person_count, bicycle_count) "
            "VALUES (%s, %s, 'completed', 20.0, 0, 0, 0, 0, 0)",
            minute,
        )
    steady = rollups_refresh(now=end + timedelta(minutes=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    # 2. Time the answers.
    key = api_key_create(name="bench", scopes=["telemetry:read"]).raw_key
    client = Client(HTTP_HOST="localhost", HTTP_X_API_KEY=key)
    zones = list(by_zone)
    latest_hour = end.replace(minute=0)

    def window(hours: int) -> tuple[datetime, datetime]:
        back = rng.randrange(0, args.days * 24 - hours - 24)
        until = latest_hour - timedelta(hours=back)
        return until - timedelta(hours=hours), until

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    cases: dict[str, dict[str, Callable[[], object]]] = {
        "hourly": {
            "rollups": lambda: analytics_frames(
                scope=AnalyticsScope.camera(rng.choice(camera_ids)), since=(w := window(24))[0], until=w[1], daily=False
            ),
            "api": lambda: client.get(
                "/api/v1/analytics/hourly",
                {"camera_id": str(rng.choice(camera_ids)), "since": iso((w := window(24))[0]), "until": iso(w[1])},
            ),
            "raw": lambda: raw_query(RAW_HOURLY, [rng.choice(camera_ids), *window(24)])(),
        },
        "daily": {
            "rollups": lambda: analytics_frames(
                scope=AnalyticsScope.zone(rng.choice(zones)), since=(w := window(24 * 7))[0], until=w[1], daily=True
            ),
            "api": lambda: client.get(
                "/api/v1/analytics/daily",
                {"zone_id": str(rng.choice(zones)), "since": iso((w := window(24 * 7))[0]), "until": iso(w[1])},
            ),
            "raw": lambda: raw_query(RAW_DAILY, [rng.choice(zones), *window(24 * 7)])(),
        },
        "detections": {
            "rollups": lambda: analytics_detections(
                scope=AnalyticsScope.fleet(), since=(w := window(24))[0], until=w[1], daily=False
            ),
            "api": lambda: client.get(
                "/api/v1/analytics/detections", {"since": iso((w := window(24))[0]), "until": iso(w[1])}
            ),
            "raw": lambda: raw_query(RAW_DETECTIONS, list(window(24)))(),
        },
    }
    response = client.get("/api/v1/analytics/hourly")
    assert response.status_code == 200, response.content

    print()
    print(f"Analytics at {frames:,} frames + {detections:,} detections ({args.days} daily partitions, "
          f"{args.cameras} cameras); p50 / p99 ms")  # fmt: skip
    header = (
        f"{'answer':<11} {'raw (reference)':>17} {'rollups selector':>17} {'API in-process':>16} "
        f"{'raw/rollups p50':>16} {'goal':>6} {'seed':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, paths in cases.items():
        paths["rollups"]()  # warm up
        rollup_p50, rollup_p99 = timed(paths["rollups"], args.iterations)
        api_p50, api_p99 = timed(paths["api"], args.iterations)
        raw_p50, raw_p99 = timed(paths["raw"], args.raw_iterations)
        verdict = "ok" if max(rollup_p99, api_p99) < GOALS_MS[name] else "MISSED"
        print(
            f"{name:<11} {raw_p50:>8.1f} / {raw_p99:>6.1f} {rollup_p50:>8.2f} / {rollup_p99:>6.2f} "
            f"{api_p50:>7.2f} / {api_p99:>6.2f} {raw_p50 / rollup_p50:>15.0f}x {GOALS_MS[name]:>5.0f} "
            f"{SEED_MS[name]:>5.0f}  {verdict}"
        )
    print()
    print("Rollup refresh")
    print(f"  build from scratch: {raw_rows:,} raw rows ({frames:,} frames + {detections:,} detections) in "
          f"{build.seconds:.1f} s = {raw_rows / build.seconds:,.0f} raw rows/s "
          f"({frames / build.seconds:,.0f} frames/s), {build.rows / build.seconds:,.0f} rollup rows/s "
          f"(minute rows only for the last {policy.minute_retention.days} days)")  # fmt: skip
    print(f"  steady-state run (1 new minute, current hour re-aggregated): {steady.seconds * 1000:.0f} ms, "
          f"{steady.raw_frames:,} raw frames re-read, {steady.rows:,} rollup rows written")  # fmt: skip


if __name__ == "__main__":
    main()
