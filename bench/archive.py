"""Export and restore one daily frame partition: our path beside `psql \\copy` of the same partition.

    flock /tmp/its-bench.lock .venv/bin/python bench/archive.py [--rows 5000000]

Runs in a database of its own (created, migrated, dropped at the end) on the server of DATABASE_URL. Ours:
`COPY (SELECT ...) TO STDOUT` streamed through gzip (level ARCHIVE_COMPRESSION_LEVEL) and SHA-256 into the
archive storage, then verified by re-reading it; restore reads it back from storage, checks both hashes and
loads it with `COPY ... FROM STDIN` into a fresh partition (with its indexes). References: psql's \\copy of
the same SELECT to a plain file and through `gzip -1`, and \\copy FROM the same files into the same fresh
partition. Prints rows/s and the ratio to psql.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
DAY = datetime(2026, 3, 10, tzinfo=UTC)
PARTITION = "frame_metadata_p20260310"


def psql(url: str, command: str) -> float:
    """Time one psql meta-command. PGTZ=UTC: the same session time zone as ours, so both write the same bytes."""
    started = time.perf_counter()
    environment = {**os.environ, "PGTZ": "UTC"}
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True, env=environment)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keep-database", action="store_true")
    arguments = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/its_camera")
    admin = psycopg.conninfo.conninfo_to_dict(server_url) | {"dbname": "postgres"}
    name = "its_camera_bench_archive"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    bench_url = server_url.rsplit("/", 1)[0] + f"/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="its-bench-archive-"))
    os.environ.update(
        DATABASE_URL=bench_url,
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        ARCHIVE_ROOT=str(workdir / "archive"),
        DB_STATEMENT_TIMEOUT_MS="0",
        LOG_LEVEL="WARNING",
    )
    try:
        run(arguments.rows, bench_url, workdir)
    finally:
        from django.db import connections

        connections.close_all()
        for connection in connections.all():
            connection.close_pool()
        if not arguments.keep_database:
            with psycopg.connect(**admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def run(rows: int, url: str, workdir: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from archival.conf import archival_setting
    from archival.models import RetentionPolicy
    from archival.services.archives import archive_restore, archive_verify, manifest_load, table_columns
    from archival.services.retention import retention_apply
    from telemetry.partitioning import UtcTimePartition, partitioned_tables
    from telemetry.services.partitions import partition_create, partitions_apply

    call_command("migrate", verbosity=0)
    partitions_apply(moment=DAY)
    cameras = 100
    step = 86_400 / (rows / cameras)
    print(f"Filling {PARTITION} with {rows:,} frames ({cameras} cameras) ...", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, processing_time_ms,
                width, height, quality_score, detection_count, vehicle_count, person_count, bicycle_count,
                max_confidence, detections)
            SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g %% %s), 12, '0'))::uuid,
                   %s::timestamptz + (g / %s) * make_interval(secs => %s), g / %s,
                   CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'completed' END, 8 + (g %% 23) * 0.37, 1920, 1080,
                   0.5 + (g %% 50) / 100.0, 2, 1, 1, 0, 0.5 + (g %% 49) / 100.0,
                   jsonb_build_array(
                     jsonb_build_object('object_type', 'car', 'confidence', 0.91,
                                        'bbox', jsonb_build_array(10, 20, 110, 90), 'track_id', g %% 1000),
                     jsonb_build_object('object_type', 'person', 'confidence', 0.77,
                                        'bbox', jsonb_build_array(300, 40, 340, 160), 'track_id', g %% 997))
            FROM generate_series(0, %s - 1) g
            """,
            [cameras, DAY, cameras, step, cameras, rows],
        )
        cursor.execute(f"VACUUM (ANALYZE) {PARTITION}")
    print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)

    columns = ", ".join(f'"{name}"' for name, _ in table_columns("frame_metadata"))
    select = f"SELECT {columns} FROM {PARTITION}"
    plain, gzipped = workdir / "reference.copy", workdir / "reference.copy.gz"
    level = archival_setting("ARCHIVE_COMPRESSION_LEVEL")
    results = []

    def record(kind: str, path: str, seconds: float, reference: float | None) -> None:
        results.append((kind, path, seconds, rows / seconds, reference / seconds if reference else None))

    ref_export = psql(url, f"\\copy ({select}) TO '{plain}'")
    record("export", "psql \\copy TO file (plain, reference)", ref_export, ref_export)
    ref_export_gz = psql(url, f"\\copy ({select}) TO PROGRAM 'gzip -{level} > {gzipped}'")
    record("export", f"psql \\copy TO PROGRAM 'gzip -{level}'", ref_export_gz, ref_export)

    policy = RetentionPolicy.objects.get(table="frame_metadata")
    RetentionPolicy.objects.exclude(pk=policy.pk).update(enabled=False)
    started = time.perf_counter()
    result = retention_apply(now=datetime(2026, 9, 20, tzinfo=UTC))
    ours_total = time.perf_counter() - started
    (run,) = [r for r in result.runs if r.partition == PARTITION]  # type: ignore[union-attr]
    assert run.state == "dropped", run.error
    assert run.rows == rows, (run.rows, rows)
    manifest = manifest_load(run.manifest_location)
    started = time.perf_counter()
    archive_verify(manifest=manifest)
    verify = time.perf_counter() - started
    export_only = ours_total - verify  # verify runs once inside the retire; detach+drop are milliseconds
    record("export", f"ours: COPY TO -> gzip -{level} + SHA-256 -> storage", export_only, ref_export)
    record("export", "ours: verify (re-read from storage, gunzip, hash, count)", verify, ref_export)
    record("export", "ours: whole retire (export + verify + detach + drop)", ours_total, ref_export)

    started = time.perf_counter()
    restored = archive_restore(source=run, hold_days=0)
    ours_restore = time.perf_counter() - started
    assert restored.state == "restored", restored.error
    assert restored.rows == rows

    table = next(t for t in partitioned_tables() if t.table == "frame_metadata")

    def fresh_partition() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {PARTITION}")
        partition_create(table=table, partition=UtcTimePartition(start=DAY, size="daily"))

    fresh_partition()
    ref_restore = psql(url, f"\\copy {PARTITION} ({columns}) FROM '{plain}'")
    record("restore", "psql \\copy FROM file (plain, reference)", ref_restore, ref_restore)
    fresh_partition()
    ref_restore_gz = psql(url, f"\\copy {PARTITION} ({columns}) FROM PROGRAM 'gzip -dc {gzipped}'")
    record("restore", "psql \\copy FROM PROGRAM 'gzip -dc'", ref_restore_gz, ref_restore)
    record("restore", "ours: storage -> gunzip + SHA-256 -> COPY FROM, + ANALYZE", ours_restore, ref_restore)

    size = run.bytes or 0
    print()
    print(
        f"{rows:,} frames in one daily partition; archive {size / 1e6:.0f} MB (gzip -{level}), "
        f"plain COPY file {plain.stat().st_size / 1e6:.0f} MB"
    )
    print()
    print(f"| {'step':<8}| {'path':<62}| {'seconds':>8} | {'rows/s':>10} | {'x psql plain':>12} |")
    print(f"|{'-' * 9}|{'-' * 63}|{'-' * 10}|{'-' * 12}|{'-' * 14}|")
    for kind, path, seconds, rate, ratio in results:
        print(f"| {kind:<8}| {path:<62}| {seconds:>8.1f} | {rate:>10,.0f} | {ratio:>12.2f} |")


if __name__ == "__main__":
    main()
