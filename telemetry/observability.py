"""Prometheus metrics of ingest, the rollups and the telemetry beat jobs, on the platform registry (its_camera.metrics):

- `its_rollup_lag_seconds`: how far the watermark is behind now, read from the database at scrape time;
- `its_rollup_last_run_rows`: rollup rows written by the last run (also read at scrape time, so it is right
  whichever worker ran the job);
- `its_partition_default_rows{table}`: rows waiting in each DEFAULT partition (counted up to
  DEFAULT_ROWS_COUNT_LIMIT), read at scrape time; the sweep job moves them out, so anything but 0 for long
  means the sweep cannot keep up or cannot place them;
- `its_rollup_refresh_rows_total`, `its_rollup_refresh_raw_frames_total`, `its_rollup_refresh_seconds`:
  counted by the worker that runs the job;
- ingest, counted by the web process that served the batch: `its_ingest_rows_total{table}` (rate() of it is
  rows/s), `its_ingest_batch_seconds{endpoint}` (whole request: read, decode, COPY, commit) and
  `its_ingest_rejected_batches_total{endpoint, status}`. Idempotent replays write nothing and count nothing.

Imported at start-up (telemetry.apps) so the scrape-time collector is registered in web processes.
"""

from collections.abc import Iterable

from django.db import connection
from django.utils import timezone
from prometheus_client.core import Metric
from psycopg import sql

from its_camera import metrics
from telemetry.partitioning import partitioned_tables
from telemetry.selectors.analytics import rollup_watermark
from telemetry.selectors.partitions import partition_ranges
from telemetry.services.rollups import RollupRunResult

__all__ = ["ingest_batch_record", "ingest_rejected_record", "rollup_run_record"]

INGEST_ROWS = metrics.counter("its_ingest_rows_total", "Rows written by ingest, by table.", ["table"])
INGEST_BATCH_SECONDS = metrics.histogram(
    "its_ingest_batch_seconds", "Time to serve an ingest batch (read, decode, COPY, commit).", ["endpoint"]
)
INGEST_REJECTED = metrics.counter(
    "its_ingest_rejected_batches_total", "Ingest batches refused, by endpoint and HTTP status.", ["endpoint", "status"]
)


def ingest_batch_record(*, endpoint: str, rows: dict[str, int], seconds: float) -> None:
    for table, count in rows.items():
        INGEST_ROWS.labels(table=table).inc(count)
    INGEST_BATCH_SECONDS.labels(endpoint=endpoint).observe(seconds)


def ingest_rejected_record(*, endpoint: str, status: int) -> None:
    INGEST_REJECTED.labels(endpoint=endpoint, status=str(status)).inc()


ROLLUP_ROWS = metrics.counter("its_rollup_refresh_rows_total", "Rollup rows written by the refresh job.")
ROLLUP_RAW_FRAMES = metrics.counter(
    "its_rollup_refresh_raw_frames_total", "Raw frame rows aggregated by the refresh job (grace re-reads included)."
)
ROLLUP_SECONDS = metrics.histogram(
    "its_rollup_refresh_seconds",
    "Duration of a rollup refresh run.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def rollup_run_record(*, result: RollupRunResult) -> None:
    ROLLUP_ROWS.inc(result.rows)
    ROLLUP_RAW_FRAMES.inc(result.raw_frames)
    ROLLUP_SECONDS.observe(result.seconds)


@metrics.register_collector("rollups")
def rollup_collector() -> Iterable[Metric]:
    row = rollup_watermark()
    lag = metrics.gauge_family(
        "its_rollup_lag_seconds", "How far the rollup watermark is behind now (absent before the first run)."
    )
    last = metrics.gauge_family("its_rollup_last_run_rows", "Rollup rows written by the last refresh run.")
    if row is not None:
        lag.add_metric([], max(0.0, (timezone.now() - row.watermark).total_seconds()))
        last.add_metric([], row.last_run_rows)
    yield lag
    yield last


DEFAULT_ROWS_COUNT_LIMIT = 100_000


@metrics.register_collector("default_partitions")
def default_partition_collector() -> Iterable[Metric]:
    family = metrics.gauge_family(
        "its_partition_default_rows",
        f"Rows in each table's DEFAULT partition (counted up to {DEFAULT_ROWS_COUNT_LIMIT}).",
        ["table"],
    )
    for table in partitioned_tables():
        default = next((r.name for r in partition_ranges(table.table) if r.is_default), None)
        if default is None:
            continue
        query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) AS waiting").format(
            sql.Identifier(default), sql.Literal(DEFAULT_ROWS_COUNT_LIMIT)
        )
        with connection.cursor() as cursor:
            cursor.cursor.execute(query)
            family.add_metric([table.table], cursor.cursor.fetchone()[0])
    yield family


@metrics.register_collector("storage")
def storage_collector() -> Iterable[Metric]:
    """Bytes and rows of every telemetry table by storage tier (catalog and PartitionTier rows only)."""
    from telemetry.choices import StorageTier
    from telemetry.selectors.tiers import storage_by_table

    size = metrics.gauge_family(
        "its_storage_bytes", "Bytes stored by table and tier (hot, sealed, cold).", ["table", "tier"]
    )
    rows = metrics.gauge_family(
        "its_storage_rows", "Rows stored by table and tier (planner estimates for PostgreSQL tiers).", ["table", "tier"]
    )
    for table in storage_by_table(now=timezone.now()):
        for tier in StorageTier.values:
            size.add_metric([table.table, tier], table.bytes(tier))
            rows.add_metric([table.table, tier], table.rows(tier))
    yield size
    yield rows
