"""Late rows and cold duplicates: what ingest's check against cold files costs (docs/storage.md, "Late rows").

    flock /tmp/bench.lock .venv/bin/python -m its_camera.devservices exec .venv/bin/python bench/late_rows.py

Creates its own database (`<DATABASE_NAME>_bench_late_rows`), fills a day 10 days back with `--seconds` of the
seed's fleet (100 cameras x 30 fps, 5 detections a frame, 2,000-frame batches), seals it and writes it cold
(Parquet), then times 2,000-frame batches through `frames_ingest`, interleaved, each path on fresh timestamps:

- hot batches with the cold check (as shipped) beside the same service with the check switched off (the
  reference: ingest before this check existed) — the fast path pays one PartitionTier query;
- late batches into the cold range with the check beside hot batches (where PostgreSQL's unique index checks);
- the check alone on a late batch (one DuckDB query over the day's file), p50 / p99.

The bench database and its archive directory are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from _support import bench_database

ARCHIVE = tempfile.mkdtemp(prefix="bench-late-rows-")
DATABASE = bench_database("late_rows", ARCHIVE_ROOT=ARCHIVE)

import msgspec  # noqa: E402

CAMERAS = 100
FPS = 30
BATCH = 2000
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
COLD_DAY = (NOW - timedelta(days=10)).replace(hour=0)


def batches(camera_ids: list, start: datetime, seconds: float) -> list:
    from telemetry.services.batches import frames_decode
    from telemetry.simulation import generate_frames

    frames = list(generate_frames(camera_ids, fps=FPS, start=start, seconds=seconds, detections_per_frame=5))
    return [frames_decode(msgspec.json.encode(frames[i : i + BATCH]), now=NOW) for i in range(0, len(frames), BATCH)]


def fill_and_tier(camera_ids: list, seconds: float) -> int:
    from archival.models import RetentionPolicy
    from archival.services.tiering import partitions_tier
    from telemetry.models import PartitionTier
    from telemetry.services.ingest import frames_ingest
    from telemetry.services.partitions import partitions_apply
    from telemetry.services.tiering import partitions_seal

    partitions_apply(moment=COLD_DAY)
    partitions_apply(moment=NOW)
    for batch in batches(camera_ids, COLD_DAY + timedelta(hours=9), seconds):
        frames_ingest(batch=batch)
    RetentionPolicy.objects.update(enabled=False)
    RetentionPolicy.objects.filter(table__in=["frame_metadata", "detections"]).update(enabled=True, cold_after_days=7)
    partitions_seal(now=NOW, limit=1000)
    partitions_tier(now=NOW, limit=1000)
    tier = PartitionTier.objects.get(partition=f"frame_metadata_p{COLD_DAY:%Y%m%d}")
    assert tier.tier == "cold", tier
    return int(tier.rows or 0)


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="seconds of fleet traffic in the cold day")
    parser.add_argument("--batches", type=int, default=24, help="timed batches per path")
    arguments = parser.parse_args()

    DATABASE.recreate()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from cameras.models import Camera
        from telemetry.selectors.cold import cold_rows_at
        from telemetry.services import ingest

        camera_ids = [c.id for c in Camera.objects.bulk_create([Camera(name=f"late-{n:03d}") for n in range(CAMERAS)])]
        cold_frames = fill_and_tier(camera_ids, arguments.seconds)
        seconds_per_batch = BATCH / CAMERAS / FPS
        hot_start, late_start = NOW - timedelta(hours=2), COLD_DAY + timedelta(hours=15)
        check = ingest._reject_cold_duplicates
        times: dict[str, list[float]] = {"hot, checked": [], "hot, no check": [], "late (cold range), checked": []}
        check_alone: list[float] = []
        fast_path: list[float] = []

        def unchecked_ingest(batch) -> None:
            ingest._reject_cold_duplicates = lambda batch: None  # the reference: ingest before the check
            try:
                ingest.frames_ingest(batch=batch)
            finally:
                ingest._reject_cold_duplicates = check

        for index in range(arguments.batches):
            offset = timedelta(seconds=index * 3 * seconds_per_batch)
            hot = batches(camera_ids, hot_start + offset, seconds_per_batch)[0]
            unchecked = batches(
                camera_ids, hot_start + offset + timedelta(seconds=seconds_per_batch), seconds_per_batch
            )
            late = batches(camera_ids, late_start + offset, seconds_per_batch)[0]
            runs = [
                ("hot, checked", lambda b=hot: ingest.frames_ingest(batch=b)),
                ("hot, no check", lambda b=unchecked[0]: unchecked_ingest(b)),
                ("late (cold range), checked", lambda b=late: ingest.frames_ingest(batch=b)),
            ]
            for name, run in runs if index % 2 == 0 else reversed(runs):  # no path always first on a warm cache
                times[name].append(timed(run))
            hot_keys = [(frame.camera_id, frame.timestamp) for frame in hot.frames]
            fast_path.append(timed(lambda k=hot_keys: cold_rows_at(table="frame_metadata", keys=k, columns=())))
            keys = [(frame.camera_id, frame.timestamp - timedelta(hours=6)) for frame in late.frames]  # cold keys
            check_alone.append(timed(lambda k=keys: cold_rows_at(table="frame_metadata", keys=k, columns=())))
        print(f"cold day: {cold_frames:,} frames in one Parquet file; {arguments.batches} batches of {BATCH} frames")
        print()
        print("| path | batch p50 ms | batch p99 ms | frames/s | x hot, no check |")
        print("|---|---|---|---|---|")
        reference = statistics.median(times["hot, no check"])
        for name, samples in times.items():
            p50 = statistics.median(samples)
            p99 = sorted(samples)[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
            print(f"| {name} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {BATCH / p50:,.0f} | {p50 / reference:.2f} |")
        print()
        ordered = sorted(check_alone)
        p50, p99 = statistics.median(ordered), ordered[round(0.99 * (len(ordered) - 1))]
        print(f"cold check alone on a late batch ({BATCH} keys): p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
        ordered = sorted(fast_path)
        p50, p99 = statistics.median(ordered), ordered[round(0.99 * (len(ordered) - 1))]
        print(f"cold check alone on a hot batch (the fast path): p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
    finally:
        from django.db import connections

        connections.close_all()
        DATABASE.drop()
        import shutil

        shutil.rmtree(ARCHIVE, ignore_errors=True)


if __name__ == "__main__":
    main()
