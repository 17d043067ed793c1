"""Ingest into the tables distributed by camera on Citus, beside the same ingest into a single node, in one run.

    flock /tmp/bench.lock .venv/bin/python bench/citus.py --citus-url postgresql://postgres@127.0.0.1:9700/its_bench

`--citus-url` names a database on a Citus coordinator whose workers are registered (docs/scaling.md): the
bench migrates it, creates the partitions and runs `manage.py citus distribute`. The single node is a plain
database (`<name>_single`) created on the same server, so both sides share the machine, the PostgreSQL build
and its settings; only the placement differs.

Each side runs in a child process of its own (Django binds one database per process) and writes the same
frames: 100 cameras x 30 fps for `--seconds` seconds, 5 detections each, in 2,000-frame batches, through
the service path (`telemetry.services.ingest.frames_ingest`: camera check, binary COPY of frames and
detections, last_seen_at), one transaction per batch. Each child checks that every row arrived, and that
a replayed batch is refused with 409 and writes nothing, then empties its tables.

On one machine the coordinator and both workers share the same 2 cores: this proves the distributed path
works and shows the coordinator's overhead; it does not measure scale-out, which needs workers on machines
of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

CAMERAS = 100
FPS = 30
DETECTIONS_PER_FRAME = 5
BATCH = 2000


def manage(url: str, *args: str) -> None:
    environment = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.dev"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=environment, check=True)


def prepare(citus_url: str, single_url: str) -> None:
    import psycopg

    parts = urlsplit(single_url)
    single_db = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{single_db}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{single_db}"')
    for url in (citus_url, single_url):
        manage(url, "migrate", "--verbosity", "0")
        manage(url, "partitions", "apply")
    manage(citus_url, "citus", "distribute")


def child(label: str, seconds: float) -> None:
    """Runs in a child process with DATABASE_URL set: prints one JSON line with the measured rate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    os.environ["DEBUG"] = "False"
    import django

    django.setup()
    import msgspec
    from django.db import connection

    from cameras.models import Camera
    from telemetry.services.batches import BatchRejected, frames_decode
    from telemetry.services.ingest import frames_ingest
    from telemetry.simulation import generate_frames

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE frame_metadata, detections")
        cursor.execute("DELETE FROM cameras WHERE name LIKE 'bench-citus-%%'")
    cameras = Camera.objects.bulk_create([Camera(name=f"bench-citus-{n:03d}") for n in range(CAMERAS)])
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    frames = list(
        generate_frames(
            [camera.id for camera in cameras],
            fps=FPS,
            start=start,
            seconds=seconds,
            detections_per_frame=DETECTIONS_PER_FRAME,
        )
    )
    batches = [frames_decode(msgspec.json.encode(frames[i : i + BATCH])) for i in range(0, len(frames), BATCH)]
    detections = sum(batch.detection_count for batch in batches)
    latencies = []
    started = time.perf_counter()
    for batch in batches:
        batch_started = time.perf_counter()
        frames_ingest(batch=batch)
        latencies.append(time.perf_counter() - batch_started)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM frame_metadata), (SELECT count(*) FROM detections)")
        stored = cursor.fetchone()
    try:
        frames_ingest(batch=batches[0])
        replay = "accepted (wrong)"
    except BatchRejected as rejected:
        replay = str(rejected.status)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM frame_metadata), (SELECT count(*) FROM detections)")
        after_replay = cursor.fetchone()
        cursor.execute("TRUNCATE frame_metadata, detections")
    Camera.objects.filter(name__startswith="bench-citus-").delete()
    latencies.sort()
    print(
        json.dumps(
            {
                "label": label,
                "frames": len(frames),
                "detections": detections,
                "seconds": elapsed,
                "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
                "stored": list(stored),
                "replay": replay,
                "replay_wrote_nothing": list(after_replay) == list(stored),
            }
        )
    )


def run_child(label: str, url: str, seconds: float) -> dict:
    environment = {**os.environ, "DATABASE_URL": url}
    output = subprocess.run(
        [sys.executable, __file__, "--child", label, "--seconds", str(seconds)],
        cwd=PROJECT_DIR,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citus-url", default=os.environ.get("CITUS_URL", ""))
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds of a 100-camera, 30 fps fleet.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if not 1 <= options.seconds <= 120:
        parser.error("--seconds must be between 1 and 120")
    if options.child:
        child(options.child, options.seconds)
        return 0
    if not options.citus_url:
        # `make bench` runs every script: without a cluster there is nothing to compare, say so and move on.
        print("skipped: --citus-url (or CITUS_URL) must name a Citus coordinator database (docs/scaling.md)")
        return 0
    parts = urlsplit(options.citus_url)
    single_url = urlunsplit(parts._replace(path=f"/{parts.path.lstrip('/')}_single"))
    prepare(options.citus_url, single_url)
    results = [
        run_child("single node (reference)", single_url, options.seconds),
        run_child("Citus, 2 workers (ours)", options.citus_url, options.seconds),
    ]
    reference = results[0]["frames"] / results[0]["seconds"]
    print(f"{CAMERAS} cameras x {FPS} fps x {options.seconds:g} s, {DETECTIONS_PER_FRAME} detections a frame,")
    print(f"{BATCH}-frame batches through telemetry.services.ingest.frames_ingest; one machine, 2 cores\n")
    header = f"{'path':<26} {'frames':>8} {'frames/s':>9} {'rows/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'x ref':>6}"
    print(header + "  stored / replay")
    for result in results:
        frames_per_second = result["frames"] / result["seconds"]
        rows_per_second = (result["frames"] + result["detections"]) / result["seconds"]
        complete = result["stored"] == [result["frames"], result["detections"]]
        print(
            f"{result['label']:<26} {result['frames']:>8} {frames_per_second:>9.0f} {rows_per_second:>9.0f}"
            f" {result['p50_ms']:>7.1f} {result['p99_ms']:>7.1f} {frames_per_second / reference:>6.2f}"
            f"  {'all rows' if complete else 'MISSING ROWS'} / replay {result['replay']}"
            f"{'' if result['replay_wrote_nothing'] else ' WROTE ROWS'}"
        )
    print("\nOne machine: the coordinator and the workers share the cores; this shows correctness and the")
    print("coordinator's overhead, not scale-out.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
