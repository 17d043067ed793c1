"""Metrics ingest with a natural key: our service (COPY, INSERT … ON CONFLICT on a retry) beside plain COPY.

    flock /tmp/bench.lock .venv/bin/python -m its_camera.devservices exec .venv/bin/python bench/metrics_ingest.py

POST /api/v1/metrics stores each sample (camera, name, timestamp, labels) once, so a batch retried without an
Idempotency-Key writes nothing (telemetry migration 0007). COPY cannot skip conflicting rows, so the service
COPYs in a savepoint and, when COPY hits the key, inserts from unnest(arrays) with ON CONFLICT DO NOTHING
instead. This measures what that costs, on the same rows, in interleaved rounds, into the same (truncated) table:

- service: telemetry.services.ingest.metrics_ingest on decoded batches (camera check, COPY in a savepoint,
  last_seen_at update), the path the API runs;
- COPY (reference): a bare psycopg binary COPY of the same rows, one transaction per batch: the old path,
  which stored a retried batch twice; measured with the natural-key index in place, then without it (what
  the index itself costs);
- retry: the service again on batches already stored (every row a duplicate: the COPY fails, the fallback
  INSERT skips them all: what a retry costs);
- the INSERT alone and the alternative (COPY into a temporary table, then INSERT … SELECT … ON CONFLICT), both on
  a bare connection, to compare the two ways of skipping duplicates without the service's other work.

Creates its own database (`<name>_bench_metrics` next to DATABASE_URL's) and drops it at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _support import bench_database, percentile

DATABASE = bench_database("metrics")

import msgspec  # noqa: E402
import psycopg  # noqa: E402

CAMERAS = 100
NAMES = ("fps", "gpu_utilization", "inference_ms", "queue_depth", "temperature_c")
COLUMNS = ("camera_id", "timestamp", "name", "value", "labels", "alert_level")
TYPES = ["uuid", "timestamptz", "text", "float8", "jsonb", "text"]
INDEX_SQL = (
    "CREATE UNIQUE INDEX uniq_system_metrics_sample ON system_metrics "
    '(camera_id, name, "timestamp", md5(labels::text)) NULLS NOT DISTINCT'
)


def setup() -> list[uuid.UUID]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cameras.models import Camera
    from telemetry.services.partitions import partitions_apply

    partitions_apply()
    cameras = Camera.objects.bulk_create([Camera(name=f"bench-camera-{n:03d}") for n in range(CAMERAS)])
    return [camera.id for camera in cameras]


def build_batches(camera_ids: list[uuid.UUID], *, batches: int, batch_size: int, start: datetime) -> list[Any]:
    """Every camera reports each metric name once a second, with two labels; bodies decoded as the API does."""
    from telemetry.services.batches import metrics_decode

    rows: list[dict[str, Any]] = []
    second = 0
    while len(rows) < batches * batch_size:
        moment = (start + timedelta(seconds=second)).isoformat()
        for index, camera_id in enumerate(camera_ids):
            for name in NAMES:
                labels = {"gpu": str(index % 4), "model": "yolo-v8"}
                rows.append(
                    {
                        "camera_id": str(camera_id),
                        "timestamp": moment,
                        "name": name,
                        "value": 0.5 + index,
                        "labels": labels,
                    }
                )
        second += 1
    rows = rows[: batches * batch_size]
    return [metrics_decode(msgspec.json.encode(rows[i : i + batch_size])) for i in range(0, len(rows), batch_size)]


def copy_rows(batch: list[Any]) -> list[tuple]:
    encode = msgspec.json.encode
    return [(m.camera_id, m.timestamp, m.name, m.value, encode(m.labels).decode(), m.alert_level) for m in batch]


def truncate() -> None:
    with psycopg.connect(DATABASE.url, autocommit=True) as conn:
        conn.execute("TRUNCATE system_metrics")
        conn.execute("CHECKPOINT")


def run_service(batches: list[Any]) -> list[float]:
    from telemetry.services.ingest import metrics_ingest

    latencies = []
    for batch in batches:
        started = time.perf_counter()
        metrics_ingest(metrics=batch)
        latencies.append(time.perf_counter() - started)
    return latencies


def run_copy(rows: list[list[tuple]]) -> list[float]:
    latencies = []
    statement = f"COPY system_metrics ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with psycopg.connect(DATABASE.url) as conn:
        for batch in rows:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(TYPES)
                for row in batch:
                    copy.write_row(row)
            latencies.append(time.perf_counter() - started)
    return latencies


def run_raw_unnest(rows: list[list[tuple]]) -> list[float]:
    """The service's statement alone, on a bare connection (no camera check, no last_seen_at update)."""
    from telemetry.services.ingest import METRICS_INSERT

    latencies = []
    with psycopg.connect(DATABASE.url) as conn:
        for batch in rows:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(METRICS_INSERT, [list(column) for column in zip(*batch, strict=True)])
            latencies.append(time.perf_counter() - started)
    return latencies


def run_staging_copy(rows: list[list[tuple]]) -> list[float]:
    """The alternative: COPY into a temporary table dropped at commit, then INSERT … SELECT … ON CONFLICT."""
    latencies = []
    with psycopg.connect(DATABASE.url) as conn:
        for batch in rows:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMPORARY TABLE metrics_staging (camera_id uuid, timestamp timestamptz, name text, "
                    "value float8, labels jsonb, alert_level text) ON COMMIT DROP"
                )
                with cursor.copy(f"COPY metrics_staging ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(TYPES)
                    for row in batch:
                        copy.write_row(row)
                cursor.execute(
                    f"INSERT INTO system_metrics ({', '.join(COLUMNS)}) "
                    f"SELECT {', '.join(COLUMNS)} FROM metrics_staging "
                    'ON CONFLICT (camera_id, name, "timestamp", md5(labels::text)) DO NOTHING'
                )
            latencies.append(time.perf_counter() - started)
    return latencies


def stored() -> int:
    with psycopg.connect(DATABASE.url) as conn:
        return int(conn.execute("SELECT count(*) FROM system_metrics").fetchone()[0])


def set_index(present: bool) -> None:
    with psycopg.connect(DATABASE.url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS uniq_system_metrics_sample")
        if present:
            conn.execute(INDEX_SQL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500, help="metrics per batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    DATABASE.recreate()
    try:
        camera_ids = setup()
        batches = build_batches(
            camera_ids, batches=args.batches, batch_size=args.batch_size, start=datetime.now(UTC) - timedelta(hours=1)
        )
        rows = [copy_rows(batch) for batch in batches]
        total = sum(map(len, batches))
        results: dict[str, list[list[float]]] = {
            name: [] for name in ("copy", "service", "retry", "raw_unnest", "staging_copy", "copy_no_index")
        }
        paths: list[tuple[str, Callable[[], list[float]]]] = [
            ("copy", lambda: run_copy(rows)),
            ("service", lambda: run_service(batches)),
            ("raw_unnest", lambda: run_raw_unnest(rows)),
            ("staging_copy", lambda: run_staging_copy(rows)),
        ]
        for round_number in range(args.rounds):
            for name, run in paths if round_number % 2 == 0 else list(reversed(paths)):
                truncate()
                results[name].append(run())
                assert stored() == total, f"{name} stored {stored()} of {total}"
                if name == "service":
                    results["retry"].append(run_service(batches))
                    assert stored() == total, "a retry stored rows twice"
            set_index(False)
            truncate()
            results["copy_no_index"].append(run_copy(rows))
            set_index(True)

        def rate(name: str) -> float:
            return statistics.median(total / sum(latencies) for latencies in results[name])

        reference = rate("copy")
        print(f"\nMetrics ingest: {args.batches} batches x {args.batch_size} metrics, {args.rounds} interleaved rounds")
        print(f"{'path':<52} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'x COPY':>7}")
        labels = {
            "copy": "binary COPY, natural-key index present (reference)",
            "service": "ours: the service, a new batch (COPY in a savepoint)",
            "retry": "ours: the service, a retried batch (fallback INSERT)",
            "raw_unnest": "INSERT unnest ON CONFLICT DO NOTHING, bare",
            "staging_copy": "COPY into a temp table + INSERT ON CONFLICT, bare",
            "copy_no_index": "binary COPY without the natural-key index",
        }
        for name, label in labels.items():
            flat = [latency for run in results[name] for latency in run]
            print(
                f"{label:<52} {rate(name):>10,.0f} {percentile(flat, 0.5) * 1000:>8.1f} "
                f"{percentile(flat, 0.99) * 1000:>8.1f} {rate(name) / reference:>7.2f}"
            )
        print(f"rows stored after every path and retry: {total:,} of {total:,} sent")
    finally:
        from django.db import connections

        connections.close_all()
        for connection in connections.all():
            connection.close_pool()
        DATABASE.drop()


if __name__ == "__main__":
    main()
