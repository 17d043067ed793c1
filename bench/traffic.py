"""Traffic counting in the rollup step, and count reads, each beside a reference path.

    flock /tmp/bench.lock .venv/bin/python -m its_camera.devservices exec .venv/bin/python bench/traffic.py \
        [--cameras 100] [--fps 30] [--seconds 60] [--iterations 200] [--keep]

Creates its own database (`<DATABASE_NAME>_bench_traffic`), migrates it, registers `--cameras` cameras in 10
zones, each with two counting lines and one region, and sends `--seconds` of the seed's load (100 cameras x 30
fps = 3,000 frames/s, ~5 tracked objects a frame: a new object every 0.8 s living 4 s) from the traffic scene
(traffic.simulation) through telemetry's COPY ingest service. Then:

1. rollup refresh of that range (`rollups_rebuild`, the same step the beat job runs) without the traffic hook
   (the reference: telemetry's own rollups) and with it, in raw rows (frames + detections) per second and
   detections per second; the goal is >= 2 x headroom over the seed's 15,000 detections/s with counting on;
2. the computed counts compared with the scene's truth (crossings, distinct objects, occupancy): must be equal;
3. `GET /api/v1/traffic/counts` p50/p99 (Django test client, in-process) for a zone-day (hour buckets) and a
   camera-week (hour buckets), over a week of synthetic 15-minute/hour/day count rows for every line, beside the
   reference: the same zone's crossings computed from the raw detections of the loaded range only. Goal p99 < 50 ms.

The bench database is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from _support import bench_database

# The scene is replayed at a fixed moment in the past (START): ingest accepts it as a backfill.
DATABASE = bench_database("traffic", DB_STATEMENT_TIMEOUT_MS="3600000", TELEMETRY_ACCEPT_PAST_DAYS="36500")


SEED_DETECTIONS_PER_SECOND = 15_000
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a fixed clock: a Monday morning


def timed(function: Callable[[], object], iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    DATABASE.recreate()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            DATABASE.drop()


def seed(camera_count: int) -> tuple[list, list]:
    from cameras.models import Camera, Zone
    from traffic.services.definitions import line_create, region_create

    zones = Zone.objects.bulk_create([Zone(name=f"zone-{n}") for n in range(10)])
    cameras = Camera.objects.bulk_create(
        [Camera(name=f"cam-{n:03d}", zone=zones[n % 10], latitude=40.7, longitude=-74.0,
                config={"resolution": "1080p"}) for n in range(camera_count)]
    )  # fmt: skip
    defined = START - timedelta(days=8)
    for camera in cameras:
        line_create(camera=camera, name="stop line", points=[[200, 700], [1700, 650]], in_side="right", now=defined)
        line_create(camera=camera, name="crosswalk", points=[[900, 150], [980, 1000]], in_side="left", now=defined)
        region_create(camera=camera, name="junction", points=[[300, 300], [800, 320], [760, 600], [320, 580]],
                      now=defined)  # fmt: skip
    return cameras, zones


def load(scene: object, cameras: list, *, fps: float, seconds: int) -> tuple[int, int, float]:
    import msgspec

    from telemetry.services.batches import frames_decode
    from telemetry.services.ingest import frames_ingest
    from telemetry.simulation import generate_frames

    frames = detections = 0
    ingest_seconds = 0.0
    batch: list[dict] = []
    for frame in generate_frames([c.id for c in cameras], fps=fps, start=START, seconds=seconds, scene=scene):  # type: ignore[arg-type]
        batch.append(frame)
        if len(batch) == 2000:
            started = time.perf_counter()
            result = frames_ingest(batch=frames_decode(msgspec.json.encode(batch)))
            ingest_seconds += time.perf_counter() - started
            frames += result.frames
            detections += result.detections
            batch = []
    if batch:
        result = frames_ingest(batch=frames_decode(msgspec.json.encode(batch)))
        frames += result.frames
        detections += result.detections
    return frames, detections, ingest_seconds


def refresh(*, hooks: bool, until: datetime) -> float:
    from telemetry.services.rollups import RollupPolicy, rollups_rebuild

    policy = RollupPolicy(**{**RollupPolicy.from_settings().__dict__, "max_span": timedelta(hours=1)})
    started = time.perf_counter()
    rollups_rebuild(since=START, until=until, policy=policy, hooks=hooks)
    return time.perf_counter() - started


def synthetic_counts(lines: list, zones: dict) -> int:
    """A week of 15-minute, hour and day count rows for every line (7 classes x 2 directions, ~60 % present), so
    reads see a realistic index range whatever the loaded raw data."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO traffic_line_counts
                (granularity, bucket, line_id, camera_id, zone_id, direction, object_type, crossings, refreshed_at)
            SELECT g.granularity, b.bucket, l.id, l.camera_id, c.zone_id, d.direction, t.object_type,
                   1 + (hashtext(l.id::text || b.bucket::text || t.object_type || d.direction) & 63), now()
            FROM traffic_lines l JOIN cameras c ON c.id = l.camera_id
            CROSS JOIN (VALUES ('in'), ('out')) AS d(direction)
            CROSS JOIN (VALUES ('car'), ('truck'), ('bus'), ('bicycle'), ('motorcycle'), ('van'), ('person'))
                AS t(object_type)
            CROSS JOIN (VALUES ('15min', interval '15 minutes'), ('hour', interval '1 hour'), ('day', interval '1 day'))
                AS g(granularity, step)
            CROSS JOIN LATERAL generate_series(%s::timestamptz, %s::timestamptz - g.step, g.step) AS b(bucket)
            WHERE hashtext(l.id::text || t.object_type || b.bucket::text) %% 10 < 6
            ON CONFLICT DO NOTHING
            """,
            [START - timedelta(days=7), START],
        )
        rows = cursor.rowcount
        cursor.execute("ANALYZE traffic_line_counts")
    return rows


RAW_ZONE_CROSSINGS = """
WITH obs AS (
    SELECT d.camera_id, d.track_id, d."timestamp" AS ts, d.object_type, (d.bbox_x1 + d.bbox_x2) / 2 AS x, d.bbox_y2 AS y
    FROM detections d JOIN cameras c ON c.id = d.camera_id
    WHERE c.zone_id = %(zone)s AND d.track_id IS NOT NULL AND d."timestamp" >= %(since)s AND d."timestamp" < %(until)s
),
steps AS (
    SELECT *, lag(x) OVER w AS px, lag(y) OVER w AS py, lag(ts) OVER w AS pts FROM obs
    WINDOW w AS (PARTITION BY camera_id, track_id ORDER BY ts)
)
SELECT l.id, count(DISTINCT (s.track_id, ((v.x2 - v.x1) * (s.y - v.y1) - (v.y2 - v.y1) * (s.x - v.x1) > 0)))
FROM steps s JOIN traffic_lines l ON l.camera_id = s.camera_id
JOIN traffic_line_versions v ON v.line_id = l.id AND v.valid_until IS NULL
WHERE s.pts IS NOT NULL AND s.ts - s.pts <= interval '10 seconds'
  AND ((v.x2 - v.x1) * (s.py - v.y1) - (v.y2 - v.y1) * (s.px - v.x1) > 0)
      <> ((v.x2 - v.x1) * (s.y - v.y1) - (v.y2 - v.y1) * (s.x - v.x1) > 0)
  AND ((s.x - s.px) * (v.y1 - s.py) - (s.y - s.py) * (v.x1 - s.px) > 0)
      <> ((s.x - s.px) * (v.y2 - s.py) - (s.y - s.py) * (v.x2 - s.px) > 0)
GROUP BY l.id
"""


def run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client

    from its_camera.choices import ApiScope
    from its_camera.services.api_keys import api_key_create
    from telemetry.services.partitions import partitions_apply
    from traffic.models import CountingLine, LineCount, ObjectCount, RegionCount
    from traffic.simulation import TrafficScene

    partitions_apply()  # partitions around the real now; the fixed-clock rows land in the DEFAULT partition
    cameras, zones = seed(args.cameras)
    scene = TrafficScene.for_cameras([c.id for c in cameras], now=START, spawn_seconds=0.8, life_seconds=4.0)
    print(f"Sending {args.seconds} s of {args.cameras} cameras x {args.fps:g} fps from the traffic scene ...")
    frames, detections, ingest_seconds = load(scene, cameras, fps=args.fps, seconds=args.seconds)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE detections; ANALYZE frame_metadata")
    print(f"  {frames:,} frames + {detections:,} detections ({detections / frames:.2f} a frame), "
          f"ingest {frames / max(ingest_seconds, 1e-9):,.0f} frames/s")  # fmt: skip
    until = START + timedelta(seconds=args.seconds)
    raw_rows = frames + detections

    without = min(refresh(hooks=False, until=until) for _ in range(2))
    with_counting = min(refresh(hooks=True, until=until) for _ in range(2))
    print()
    print("| rollup refresh of the loaded range | seconds | raw rows/s | detections/s | x seed's 15,000 det/s |")
    print("|---|---|---|---|---|")
    for name, seconds in (("telemetry rollups only (reference)", without), ("with traffic counting", with_counting)):
        print(f"| {name} | {seconds:.2f} | {raw_rows / seconds:,.0f} | {detections / seconds:,.0f} | "
              f"{detections / seconds / SEED_DETECTIONS_PER_SECOND:.2f} |")  # fmt: skip
    counting_only = with_counting - without
    alone = detections / counting_only
    print(f"| traffic counting alone (difference) | {counting_only:.2f} | {raw_rows / counting_only:,.0f} | "
          f"{alone:,.0f} | {alone / SEED_DETECTIONS_PER_SECOND:.2f} |")  # fmt: skip
    print(f"with / without counting: {with_counting / without:.2f} x the time")

    truth = scene.truth()
    computed_crossings = {
        (r.granularity, r.line_id, r.bucket, r.direction, r.object_type): r.crossings for r in LineCount.objects.all()
    }
    computed_objects = {
        (r.granularity, r.scope_id, r.bucket, r.object_type): r.objects for r in ObjectCount.rows.filter(scope="camera")
    }
    occupancy = {
        (r.granularity, r.region_id, r.bucket): r.occupancy_max for r in RegionCount.objects.filter(object_type="")
    }
    checks = {
        "crossings": computed_crossings == truth.crossings,
        "distinct objects": computed_objects == truth.objects,
        "occupancy max": occupancy == {key: value[0] for key, value in truth.occupancy.items()},
    }
    print()
    print(f"counts == simulator truth: {checks}  ({sum(v for k, v in truth.crossings.items() if k[0] == 'day'):,} "
          f"crossings, {sum(v for k, v in truth.objects.items() if k[0] == 'day'):,} objects)")  # fmt: skip

    zone = zones[0]
    rows = synthetic_counts(list(CountingLine.objects.all()), {})
    key = api_key_create(name="bench", scopes=[ApiScope.TELEMETRY_READ]).raw_key
    client = Client(HTTP_HOST="localhost", HTTP_X_API_KEY=key)
    camera = cameras[0]
    day = {"zone_id": str(zone.id), "granularity": "hour", "since": (START - timedelta(days=1)).isoformat(),
           "until": START.isoformat()}  # fmt: skip
    week = {"camera_id": str(camera.id), "granularity": "hour", "since": (START - timedelta(days=7)).isoformat(),
            "until": START.isoformat()}  # fmt: skip

    def get(params: dict) -> Callable[[], object]:
        def call() -> object:
            response = client.get("/api/v1/traffic/counts", params)
            assert response.status_code == 200, response.content
            return response

        return call

    def answered(params: dict) -> int:
        return sum(len(series["buckets"]) for series in get(params)().json()["series"])  # type: ignore[attr-defined]

    zone_rows, week_rows = answered(day), answered(week)

    def raw_reference() -> object:
        with connection.cursor() as cursor:
            cursor.execute(RAW_ZONE_CROSSINGS, {"zone": zone.id, "since": START, "until": until})
            return cursor.fetchall()

    print()
    print(f"Reads over {rows:,} synthetic count rows (a week, every line); p50 / p99 ms over {args.iterations} runs")
    print("| read | counts answered | API p50 | API p99 | goal p99 |")
    print("|---|---|---|---|---|")
    for name, params, answered in (("zone-day (hours)", day, zone_rows), ("camera-week (hours)", week, week_rows)):
        p50, p99 = timed(get(params), args.iterations)
        print(f"| {name} | {answered:,} | {p50:.2f} | {p99:.2f} | < 50 |")
    ref50, ref99 = timed(raw_reference, 5)
    api50, _ = timed(get({**day, "granularity": "15min", "since": START.isoformat(), "until": until.isoformat()}), 20)
    print()
    print(f"Reference: one zone's crossings computed from the raw detections of only the loaded {args.seconds} s: "
          f"p50 {ref50:.1f} ms, p99 {ref99:.1f} ms; the same zone and range from the counts API: p50 {api50:.2f} ms "
          f"({ref50 / api50:.0f} x faster)")  # fmt: skip


if __name__ == "__main__":
    main()
