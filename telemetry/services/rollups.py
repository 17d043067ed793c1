"""Maintain the rollups (telemetry/models/rollups.py) incrementally from a watermark.

Every raw row with `timestamp < watermark` has been aggregated. A run moves the watermark forward in steps
of at most ROLLUP_MAX_SPAN_HOURS of event time, each step one transaction that

1. re-aggregates, from the raw partitions, every minute and hour bucket touched by
   [watermark - grace, step end): `INSERT … SELECT … GROUP BY GROUPING SETS … ON CONFLICT DO UPDATE`, one
   statement per table, reading only that time range (partition pruning + the BRIN index on timestamp);
   camera, zone and fleet rows come from the same raw rows, so every scope's p95 is
   `percentile_cont(0.95)` over exactly the bucket's raw rows;
2. rebuilds the day rows of the days touched from the hour rows (sums are exact; the day's p95 is estimated
   by merging the hours' processing-time histograms, see `histogram_p95`);
3. deletes rollup rows of the refreshed buckets that this step did not write (their raw rows are gone, or a
   camera moved to another zone);
4. moves the watermark.

Apps that derive their own rollups from the same raw rows (traffic counts) register a window hook
(`register_rollup_window_hook`): it runs in the same transaction as each step, over the same [start, end), so
a refresh, a late row within the grace window and `manage.py rollups rebuild` reach them too, and telemetry
does not import them.

Buckets are always recomputed whole (from the raw rows in the bucket), never incremented, so a step can be
repeated, interrupted or run over a range again (`manage.py rollups rebuild`) and the result is the same.
Rows that arrive late, up to ROLLUP_GRACE_SECONDS behind the watermark, land in the next run's window; rows
later than that (or status updates of old frames) need a rebuild of their range.
"""

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.progress import ProgressCallback, progress_noop
from telemetry.models import NIL_SCOPE_ID, RollupWatermark
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import rollup_lag
from telemetry.selectors.cold import cold_partitions, cold_rows_csv
from telemetry.selectors.partitions import partition_ranges

__all__ = [
    "HISTOGRAM_GROWTH",
    "HISTOGRAM_MIN_MS",
    "WATERMARK_NAME",
    "RollupPolicy",
    "RollupRunResult",
    "RollupStepResult",
    "histogram_bin",
    "histogram_p95",
    "histogram_value",
    "raw_rows_source",
    "register_rollup_window_hook",
    "rollup_lag_alert_refresh",
    "rollup_minutes_prune",
    "rollup_window_hooks",
    "rollups_rebuild",
    "rollups_refresh",
    "rollups_refresh_window",
]

logger = logging.getLogger(__name__)

WATERMARK_NAME = "telemetry"

# Processing-time histogram: bin 0 holds [0, 0.01 ms); bin i >= 1 holds [0.01 * 1.02^(i-1), 0.01 * 1.02^i) ms,
# up to bin 1000 (~3,900 s and above). A bin's value is its geometric middle, so an estimate read from it is
# within 1 % of any time in the bin.
HISTOGRAM_MIN_MS = 0.01
HISTOGRAM_GROWTH = 1.02
HISTOGRAM_MAX_BIN = 1000

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# A hook recomputes its own rollups of [start, end) from the raw rows, in the caller's transaction, and returns
# {table: rows written}. Registered at start-up by the app that owns those tables (traffic.apps).
RollupWindowHook = Callable[..., dict[str, int]]
_window_hooks: dict[str, RollupWindowHook] = {}


def register_rollup_window_hook(name: str, hook: RollupWindowHook) -> None:
    """Run `hook(start=, end=, now=)` in every rollup step after telemetry's own tables (re-registering a name
    replaces it)."""
    _window_hooks[name] = hook


def rollup_window_hooks() -> dict[str, RollupWindowHook]:
    """The registered hooks by name (a copy)."""
    return dict(_window_hooks)


def histogram_bin(value_ms: float) -> int:
    """The histogram bin of a processing time (the same function as the SQL in `_BIN_SQL`)."""
    if value_ms < HISTOGRAM_MIN_MS:
        return 0
    return min(HISTOGRAM_MAX_BIN, 1 + math.floor(math.log(value_ms / HISTOGRAM_MIN_MS) / math.log(HISTOGRAM_GROWTH)))


def histogram_value(bin_: int) -> float:
    """The value that stands for every time in a bin: its geometric middle (0 for bin 0)."""
    if bin_ <= 0:
        return 0.0
    return HISTOGRAM_MIN_MS * HISTOGRAM_GROWTH ** (bin_ - 0.5)


def histogram_p95(histograms: Iterable[tuple[Iterable[int], Iterable[int]]]) -> float | None:
    """The 95th percentile estimated from merged sparse histograms ((bins, counts) pairs), the way
    percentile_cont(0.95) computes it: between the order statistics k and k + 1 around rank 0.95 (n - 1),
    interpolated by the fractional part, each read as the value of the bin that holds it. A bin's value is
    within 1 % of every time in the bin, so the estimate is within 1 % of percentile_cont whatever the
    sample size: the bound is the histogram's, not the data's. None when empty."""
    merged: dict[int, int] = {}
    for bins, counts in histograms:
        for bin_, count in zip(bins, counts, strict=True):
            merged[bin_] = merged.get(bin_, 0) + count
    total = sum(merged.values())
    if not total:
        return None
    rank = 0.95 * (total - 1)
    lower_rank = math.floor(rank)
    upper_rank = min(lower_rank + 1, total - 1)
    lower: float | None = None
    running = 0
    for bin_ in sorted(merged):
        running += merged[bin_]
        if lower is None and running > lower_rank:
            lower = histogram_value(bin_)
        if running > upper_rank:
            upper = histogram_value(bin_)
            return lower + (rank - lower_rank) * (upper - lower) if lower is not None else upper
    return None  # unreachable: running reaches total > upper_rank


_BIN_SQL = sql.SQL(
    "CASE WHEN processing_time_ms < {min} THEN 0 ELSE least({max}, "
    "1 + floor(ln(processing_time_ms / {min}) / ln({growth})))::int END"
).format(min=sql.Literal(HISTOGRAM_MIN_MS), max=sql.Literal(HISTOGRAM_MAX_BIN), growth=sql.Literal(HISTOGRAM_GROWTH))
_BIN_VALUE_SQL = sql.SQL("CASE WHEN {bin} <= 0 THEN 0 ELSE {min} * power({growth}, {bin} - 0.5) END")

# GROUPING(camera_id, zone_id): 0 = per camera, 2 = per zone (camera_id rolled up), 3 = the fleet.
_SCOPE_COLUMNS = sql.SQL(
    """
    CASE grouping_bits WHEN 0 THEN 'camera' WHEN 2 THEN 'zone' ELSE 'fleet' END AS scope,
    CASE grouping_bits WHEN 0 THEN camera_id WHEN 2 THEN coalesce(zone_id, {nil}) ELSE {nil} END AS scope_id,
    CASE grouping_bits WHEN 0 THEN camera_id END AS camera_id,
    CASE WHEN grouping_bits IN (0, 2) THEN zone_id END AS zone_id
    """
).format(nil=sql.SQL("{}::uuid").format(sql.Literal(str(NIL_SCOPE_ID))))

_FRAME_VALUES = [
    "frames",
    "failed_frames",
    "processing_time_count",
    "processing_time_sum",
    "processing_time_p95",
    "processing_time_max",
    "detections",
]


def _upsert_set(columns: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(column)) for column in columns)


FRAME_SOURCE_COLUMNS = ["camera_id", "timestamp", "processing_status", "processing_time_ms", "detection_count"]
DETECTION_SOURCE_COLUMNS = ["camera_id", "timestamp", "object_type", "confidence"]


def raw_rows_source(table: str, columns: list[str], start: datetime, end: datetime) -> sql.Composable:
    """What a rollup (or a window hook: traffic counts) reads for `table`'s `columns` in [start, end): the table
    itself, or, when part of the range is cold, the table together with the cold rows of the range loaded into a
    temporary table (dropped at commit), so a rebuild of a cold range gives the same rollups as before it went
    cold (never rollups of nothing). Call it in the step's transaction; the caller still filters the range."""
    tiers = cold_partitions(table=table, since=start, until=end)
    if not tiers:
        return sql.Identifier(table)
    # One temporary table per column set: the rollups and a hook may read the same table's columns differently.
    temporary = f"cold_rows_{table}_{hashlib.md5('.'.join(columns).encode(), usedforsecurity=False).hexdigest()[:8]}"
    listed = sql.SQL(", ").join(map(sql.Identifier, columns))
    with connection.cursor() as cursor:
        pg = cursor.cursor
        pg.execute(
            sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                sql.Identifier(temporary), listed, sql.Identifier(table)
            )
        )
        pg.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(temporary)))
        with pg.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(sql.Identifier(temporary), listed)) as copy:
            for chunk in cold_rows_csv(tiers, columns=columns, since=start, until=end):
                copy.write(chunk)
    return sql.SQL("(SELECT {columns} FROM {table} UNION ALL SELECT {columns} FROM {temporary})").format(
        columns=listed, table=sql.Identifier(table), temporary=sql.Identifier(temporary)
    )


def _frames_from_raw(table: str, unit: str, *, histogram: bool, source: sql.Composable) -> sql.Composed:
    """Re-aggregate `table`'s buckets of `unit` from frame_metadata rows in [start, end)."""
    columns = ["scope", "scope_id", "camera_id", "zone_id", "bucket", *_FRAME_VALUES, "refreshed_at"]
    histogram_ctes: sql.Composable = sql.SQL("")
    histogram_select: sql.Composable = sql.SQL("")
    histogram_join: sql.Composable = sql.SQL("")
    if histogram:
        columns += ["histogram_bins", "histogram_counts"]
        histogram_ctes = sql.SQL(
            """,
            binned AS (
                SELECT GROUPING(camera_id, zone_id) AS grouping_bits, camera_id, zone_id, bucket, bin, count(*) AS n
                FROM (SELECT camera_id, zone_id, bucket, {bin_sql} AS bin FROM raw
                      WHERE processing_time_ms IS NOT NULL) AS with_bins
                GROUP BY GROUPING SETS ((bucket, camera_id, zone_id, bin), (bucket, zone_id, bin), (bucket, bin))
            ),
            histograms AS (
                SELECT scoped.scope, scoped.scope_id, scoped.bucket,
                       array_agg(scoped.bin ORDER BY scoped.bin) AS bins,
                       array_agg(scoped.n ORDER BY scoped.bin) AS counts
                FROM (SELECT {scope_columns}, bucket, bin, n FROM binned) AS scoped
                GROUP BY scoped.scope, scoped.scope_id, scoped.bucket
            )
            """
        ).format(bin_sql=_BIN_SQL, scope_columns=_SCOPE_COLUMNS)
        histogram_select = sql.SQL(", coalesce(histograms.bins, '{}'), coalesce(histograms.counts, '{}')")
        histogram_join = sql.SQL(
            "LEFT JOIN histograms ON histograms.scope = totals.scope AND histograms.scope_id = totals.scope_id "
            "AND histograms.bucket = totals.bucket"
        )
    return sql.SQL(
        """
        WITH raw AS (
            SELECT frames.camera_id, cameras.zone_id, date_trunc({unit}, frames."timestamp", 'UTC') AS bucket,
                   frames.processing_status, frames.processing_time_ms, frames.detection_count
            FROM {source} AS frames LEFT JOIN cameras ON cameras.id = frames.camera_id
            WHERE frames."timestamp" >= %(start)s AND frames."timestamp" < %(end)s
        ),
        grouped AS (
            SELECT GROUPING(camera_id, zone_id) AS grouping_bits, camera_id, zone_id, bucket,
                   count(*) AS frames,
                   count(*) FILTER (WHERE processing_status = 'failed') AS failed_frames,
                   count(processing_time_ms) AS processing_time_count,
                   coalesce(sum(processing_time_ms), 0) AS processing_time_sum,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms) AS processing_time_p95,
                   max(processing_time_ms) AS processing_time_max,
                   coalesce(sum(detection_count), 0) AS detections
            FROM raw
            GROUP BY GROUPING SETS ((bucket, camera_id, zone_id), (bucket, zone_id), (bucket))
        ),
        totals AS (SELECT {scope_columns}, bucket, {values} FROM grouped){histogram_ctes},
        written AS (
            INSERT INTO {table} AS rollup ({columns})
            SELECT totals.scope, totals.scope_id, totals.camera_id, totals.zone_id, totals.bucket,
                   {totals_values}, %(now)s{histogram_select}
            FROM totals {histogram_join}
            ON CONFLICT (scope, scope_id, bucket) DO UPDATE SET {update}
            RETURNING scope, frames
        )
        SELECT count(*), coalesce(sum(frames) FILTER (WHERE scope = 'fleet'), 0) FROM written
        """
    ).format(
        unit=sql.Literal(unit),
        source=source,
        scope_columns=_SCOPE_COLUMNS,
        values=sql.SQL(", ").join(map(sql.Identifier, _FRAME_VALUES)),
        totals_values=sql.SQL(", ").join(sql.Identifier("totals", column) for column in _FRAME_VALUES),
        histogram_ctes=histogram_ctes,
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        histogram_select=histogram_select,
        histogram_join=histogram_join,
        update=_upsert_set([column for column in columns if column not in {"scope", "scope_id", "bucket"}]),
    )


def _detections_from_raw(table: str, unit: str, *, source: sql.Composable) -> sql.Composed:
    columns = ["scope", "scope_id", "camera_id", "zone_id", "bucket", "object_type", "detections", "confidence_sum"]
    return sql.SQL(
        """
        WITH raw AS (
            SELECT detections.camera_id, cameras.zone_id,
                   date_trunc({unit}, detections."timestamp", 'UTC') AS bucket,
                   detections.object_type, detections.confidence
            FROM {source} AS detections LEFT JOIN cameras ON cameras.id = detections.camera_id
            WHERE detections."timestamp" >= %(start)s AND detections."timestamp" < %(end)s
        ),
        grouped AS (
            SELECT GROUPING(camera_id, zone_id) AS grouping_bits, camera_id, zone_id, bucket, object_type,
                   count(*) AS detections, sum(confidence) AS confidence_sum
            FROM raw
            GROUP BY GROUPING SETS (
                (bucket, camera_id, zone_id, object_type), (bucket, zone_id, object_type), (bucket, object_type)
            )
        ),
        written AS (
            INSERT INTO {table} AS rollup ({columns}, refreshed_at)
            SELECT {scope_columns}, bucket, object_type, detections, confidence_sum, %(now)s FROM grouped
            ON CONFLICT (scope, scope_id, bucket, object_type) DO UPDATE SET {update}
            RETURNING 1
        )
        SELECT count(*), 0 FROM written
        """
    ).format(
        unit=sql.Literal(unit),
        source=source,
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        scope_columns=_SCOPE_COLUMNS,
        update=_upsert_set(["camera_id", "zone_id", "detections", "confidence_sum", "refreshed_at"]),
    )


def _frame_days_from_hours() -> sql.Composed:
    """Day rows from the hour rows of the days in [start, end); the day's p95 is estimated from the merged
    histograms (within 1 % of percentile_cont over the day's raw rows, see `histogram_p95`)."""
    columns = ["scope", "scope_id", "camera_id", "zone_id", "bucket", *_FRAME_VALUES, "refreshed_at"]
    return sql.SQL(
        """
        WITH hours AS (
            SELECT *, date_trunc('day', bucket, 'UTC') AS day FROM telemetry_rollup_frames_hour
            WHERE bucket >= %(start)s AND bucket < %(end)s
        ),
        sums AS (
            SELECT scope, scope_id, day,
                   (array_agg(camera_id))[1] AS camera_id,
                   (array_agg(zone_id ORDER BY bucket DESC))[1] AS zone_id,
                   sum(frames) AS frames, sum(failed_frames) AS failed_frames,
                   sum(processing_time_count) AS processing_time_count,
                   sum(processing_time_sum) AS processing_time_sum,
                   max(processing_time_max) AS processing_time_max,
                   sum(detections) AS detections
            FROM hours GROUP BY scope, scope_id, day
        ),
        merged AS (
            SELECT hours.scope, hours.scope_id, hours.day, histogram.bin, sum(histogram.n) AS n
            FROM hours, unnest(hours.histogram_bins, hours.histogram_counts) AS histogram(bin, n)
            GROUP BY hours.scope, hours.scope_id, hours.day, histogram.bin
        ),
        cumulative AS (
            SELECT scope, scope_id, day, bin,
                   sum(n) OVER (PARTITION BY scope, scope_id, day ORDER BY bin) AS running,
                   sum(n) OVER (PARTITION BY scope, scope_id, day) AS total
            FROM merged
        ),
        percentile AS (
            -- percentile_cont's interpolation between the order statistics k and k + 1 around 0.95 (n - 1),
            -- each read as the value of the bin that holds it (see histogram_p95)
            SELECT scope, scope_id, day,
                   min(bin) FILTER (WHERE running > floor(0.95 * (total - 1))) AS lower_bin,
                   coalesce(min(bin) FILTER (WHERE running > floor(0.95 * (total - 1)) + 1), max(bin)) AS upper_bin,
                   0.95 * (total - 1) - floor(0.95 * (total - 1)) AS fraction
            FROM cumulative GROUP BY scope, scope_id, day, total
        ),
        histograms AS (
            SELECT scope, scope_id, day, array_agg(bin ORDER BY bin) AS bins, array_agg(n ORDER BY bin) AS counts
            FROM merged GROUP BY scope, scope_id, day
        ),
        written AS (
            INSERT INTO telemetry_rollup_frames_day AS rollup ({columns}, histogram_bins, histogram_counts)
            SELECT sums.scope, sums.scope_id, sums.camera_id, sums.zone_id, sums.day,
                   sums.frames, sums.failed_frames, sums.processing_time_count, sums.processing_time_sum,
                   {lower_value} + percentile.fraction * ({upper_value} - {lower_value}),
                   sums.processing_time_max, sums.detections, %(now)s,
                   coalesce(histograms.bins, '{{}}'), coalesce(histograms.counts, '{{}}')
            FROM sums
            LEFT JOIN percentile USING (scope, scope_id, day)
            LEFT JOIN histograms USING (scope, scope_id, day)
            ON CONFLICT (scope, scope_id, bucket) DO UPDATE SET {update}
            RETURNING 1
        )
        SELECT count(*), 0 FROM written
        """
    ).format(
        lower_value=_BIN_VALUE_SQL.format(
            bin=sql.Identifier("percentile", "lower_bin"),
            min=sql.Literal(HISTOGRAM_MIN_MS),
            growth=sql.Literal(HISTOGRAM_GROWTH),
        ),
        upper_value=_BIN_VALUE_SQL.format(
            bin=sql.Identifier("percentile", "upper_bin"),
            min=sql.Literal(HISTOGRAM_MIN_MS),
            growth=sql.Literal(HISTOGRAM_GROWTH),
        ),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        update=_upsert_set(
            [c for c in columns if c not in {"scope", "scope_id", "bucket"}] + ["histogram_bins", "histogram_counts"]
        ),
    )


_DETECTION_DAYS_FROM_HOURS = sql.SQL(
    """
    WITH written AS (
        INSERT INTO telemetry_rollup_detections_day AS rollup
            (scope, scope_id, camera_id, zone_id, bucket, object_type, detections, confidence_sum, refreshed_at)
        SELECT scope, scope_id, (array_agg(camera_id))[1], (array_agg(zone_id ORDER BY bucket DESC))[1],
               date_trunc('day', bucket, 'UTC'), object_type, sum(detections), sum(confidence_sum), %(now)s
        FROM telemetry_rollup_detections_hour
        WHERE bucket >= %(start)s AND bucket < %(end)s
        GROUP BY scope, scope_id, date_trunc('day', bucket, 'UTC'), object_type
        ON CONFLICT (scope, scope_id, bucket, object_type) DO UPDATE SET
            camera_id = EXCLUDED.camera_id, zone_id = EXCLUDED.zone_id, detections = EXCLUDED.detections,
            confidence_sum = EXCLUDED.confidence_sum, refreshed_at = EXCLUDED.refreshed_at
        RETURNING 1
    )
    SELECT count(*), 0 FROM written
    """
)

_STALE_DELETE = sql.SQL(
    "DELETE FROM {table} WHERE bucket >= %(start)s AND bucket < %(end)s AND refreshed_at <> %(now)s"
)


@dataclass(frozen=True)
class RollupPolicy:
    grace: timedelta
    max_span: timedelta
    max_steps: int
    time_budget_seconds: float
    initial_backfill: timedelta
    minute_retention: timedelta
    prune_batch_size: int
    lag_alert_after: timedelta

    @classmethod
    def from_settings(cls) -> "RollupPolicy":
        return cls(
            grace=timedelta(seconds=rollup_setting("ROLLUP_GRACE_SECONDS")),
            max_span=timedelta(hours=rollup_setting("ROLLUP_MAX_SPAN_HOURS")),
            max_steps=rollup_setting("ROLLUP_MAX_STEPS_PER_RUN"),
            time_budget_seconds=rollup_setting("ROLLUP_RUN_SECONDS"),
            initial_backfill=timedelta(days=rollup_setting("ROLLUP_INITIAL_BACKFILL_DAYS")),
            minute_retention=timedelta(days=rollup_setting("ROLLUP_MINUTE_RETENTION_DAYS")),
            prune_batch_size=rollup_setting("ROLLUP_PRUNE_BATCH_SIZE"),
            lag_alert_after=timedelta(seconds=rollup_setting("ROLLUP_LAG_ALERT_SECONDS")),
        )


@dataclass
class RollupStepResult:
    start: datetime
    end: datetime
    raw_frames: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    rows_deleted: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_written.values())


@dataclass
class RollupRunResult:
    watermark_before: datetime | None
    watermark: datetime
    steps: int = 0
    rows: int = 0
    raw_frames: int = 0
    rows_deleted: int = 0
    seconds: float = 0.0
    caught_up: bool = True

    def lag(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.watermark)

    def as_dict(self) -> dict[str, object]:
        return {
            "watermark": self.watermark.isoformat(),
            "steps": self.steps,
            "rows": self.rows,
            "raw_frames": self.raw_frames,
            "rows_deleted": self.rows_deleted,
            "seconds": round(self.seconds, 3),
            "caught_up": self.caught_up,
        }


def _floor(moment: datetime, unit: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    floored = _floor(moment, unit)
    return floored if floored == moment else floored + unit


def _execute(statement: sql.Composable, params: dict[str, Any]) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    return int(row[0]), int(row[1])


def _delete_stale(table: str, start: datetime, end: datetime, now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_STALE_DELETE.format(table=sql.Identifier(table)), {"start": start, "end": end, "now": now})
        return cursor.rowcount


def rollups_refresh_window(
    *, start: datetime, end: datetime, now: datetime | None = None, minutes: bool = True, hooks: bool = True
) -> RollupStepResult:
    """Recompute every rollup bucket touched by [start, end) from the raw rows, in the caller's transaction.

    Minute and hour buckets are recomputed whole: the raw range read is [start, end) widened to bucket
    boundaries. Day rows are rebuilt from the hour rows of the days touched. Rows of those buckets that
    were not written now are deleted. `minutes=False` leaves the minute tables alone (a backfill of a range
    older than their retention would write rows the next prune deletes). `hooks=False` skips the registered
    window hooks (bench/traffic.py measures the refresh with and without them)."""
    now = now or timezone.now()
    result = RollupStepResult(start=start, end=end)
    minute_range = {"start": _floor(start, timedelta(minutes=1)), "end": _ceil(end, timedelta(minutes=1))}
    hour_range = {"start": _floor(start, HOUR), "end": _ceil(end, HOUR)}
    day_range = {"start": _floor(start, DAY), "end": _ceil(end, DAY)}
    frames_minute, frames_hour = "telemetry_rollup_frames_minute", "telemetry_rollup_frames_hour"
    detections_minute, detections_hour = "telemetry_rollup_detections_minute", "telemetry_rollup_detections_hour"
    # The hour range holds the minute range: cold rows of the widest one are loaded once.
    frames = raw_rows_source("frame_metadata", FRAME_SOURCE_COLUMNS, hour_range["start"], hour_range["end"])
    detections = raw_rows_source("detections", DETECTION_SOURCE_COLUMNS, hour_range["start"], hour_range["end"])
    plan = [
        (frames_minute, _frames_from_raw(frames_minute, "minute", histogram=False, source=frames), minute_range),
        (frames_hour, _frames_from_raw(frames_hour, "hour", histogram=True, source=frames), hour_range),
        (detections_minute, _detections_from_raw(detections_minute, "minute", source=detections), minute_range),
        (detections_hour, _detections_from_raw(detections_hour, "hour", source=detections), hour_range),
        # Days last: they are read from the hour rows just written.
        ("telemetry_rollup_frames_day", _frame_days_from_hours(), day_range),
        ("telemetry_rollup_detections_day", _DETECTION_DAYS_FROM_HOURS, day_range),
    ]
    if not minutes:
        plan = [step for step in plan if step[0] not in {frames_minute, detections_minute}]
    for table, statement, bounds in plan:
        written, fleet_frames = _execute(statement, {**bounds, "now": now})
        result.rows_written[table] = written
        if table == frames_minute:
            result.raw_frames = fleet_frames
        result.rows_deleted += _delete_stale(table, bounds["start"], bounds["end"], now)
    if hooks:
        for hook in _window_hooks.values():
            result.rows_written.update(hook(start=start, end=end, now=now))
    return result


def _initial_watermark(now: datetime, policy: RollupPolicy) -> datetime:
    """Where a first run starts: the oldest frame partition, but no further back than the backfill limit."""
    earliest = now - policy.initial_backfill
    starts = [r.start for r in partition_ranges("frame_metadata") if not r.is_default and r.start is not None]
    return _floor(max(min(starts), earliest) if starts else earliest, HOUR)


def _watermark_row(now: datetime, policy: RollupPolicy) -> RollupWatermark:
    row = RollupWatermark.objects.filter(name=WATERMARK_NAME).first()
    if row is None:
        row, _ = RollupWatermark.objects.get_or_create(
            name=WATERMARK_NAME, defaults={"watermark": _initial_watermark(now, policy)}
        )
    return row


def rollups_refresh(
    *, now: datetime | None = None, policy: RollupPolicy | None = None, max_steps: int | None = None
) -> RollupRunResult:
    """One bounded run: move the watermark towards `now` in steps of at most `policy.max_span`, each its own
    transaction, until caught up, `max_steps` steps or the time budget. Call it under the job's advisory
    lock (telemetry.tasks.refresh_rollups): two runs at once would do the same work twice."""
    now = now or timezone.now()
    policy = policy or RollupPolicy.from_settings()
    max_steps = max_steps if max_steps is not None else policy.max_steps
    started = time.perf_counter()
    row = _watermark_row(now, policy)
    result = RollupRunResult(watermark_before=row.watermark, watermark=row.watermark)
    watermark = row.watermark
    for step in range(max_steps):
        # The first step re-reads the grace window behind the watermark for rows that arrived late; later
        # steps of the same run continue where the previous one stopped.
        start = watermark - policy.grace if step == 0 else watermark
        end = min(now, _floor(watermark + policy.max_span, HOUR))
        if end <= watermark:
            end = min(now, watermark + policy.max_span)
        if end <= start:
            break
        with transaction.atomic():
            outcome = rollups_refresh_window(
                start=start, end=end, now=timezone.now(), minutes=end > now - policy.minute_retention
            )
            watermark = max(watermark, end)
            RollupWatermark.objects.filter(name=WATERMARK_NAME).update(watermark=watermark)
        result.steps += 1
        result.rows += outcome.rows
        result.raw_frames += outcome.raw_frames
        result.rows_deleted += outcome.rows_deleted
        if watermark >= now or time.perf_counter() - started > policy.time_budget_seconds:
            break
    result.watermark = watermark
    result.seconds = time.perf_counter() - started
    result.caught_up = now - watermark <= policy.max_span
    RollupWatermark.objects.filter(name=WATERMARK_NAME).update(
        last_run_at=timezone.now(),
        last_run_rows=result.rows,
        last_run_raw_rows=result.raw_frames,
        last_run_ms=round(result.seconds * 1000, 1),
        last_error="",
    )
    return result


def rollups_rebuild(
    *,
    since: datetime,
    until: datetime,
    policy: RollupPolicy | None = None,
    progress: ProgressCallback = progress_noop,
    hooks: bool = True,
) -> RollupRunResult:
    """Recompute the rollups of [since, until) from the raw rows, an hour at a time, each hour its own
    transaction (for rows later than the grace window, status updates of old frames, restored archives).
    Does not move the watermark. Call it under the job's advisory lock. `progress` hears each window done."""
    started = time.perf_counter()
    start, stop = _floor(since, HOUR), _ceil(until, HOUR)
    span = (policy or RollupPolicy.from_settings()).max_span
    result = RollupRunResult(watermark_before=None, watermark=start)
    windows = -(-(stop - start) // span) if stop > start else 0
    progress("rollups rebuild", 0, windows)
    while start < stop:
        end = min(stop, start + span)
        with transaction.atomic():
            outcome = rollups_refresh_window(start=start, end=end, now=timezone.now(), hooks=hooks)
        result.steps += 1
        result.rows += outcome.rows
        result.raw_frames += outcome.raw_frames
        result.rows_deleted += outcome.rows_deleted
        start = end
        progress(f"rollups rebuild (up to {end:%Y-%m-%d %H:%M} UTC)", result.steps, windows)
    result.watermark = stop
    result.seconds = time.perf_counter() - started
    return result


def rollup_minutes_prune(*, now: datetime | None = None, policy: RollupPolicy | None = None) -> int:
    """Delete one batch of minute rows older than ROLLUP_MINUTE_RETENTION_DAYS (hour and day rows stay: they
    are small and are what the analytics read). Returns how many rows were deleted."""
    now = now or timezone.now()
    policy = policy or RollupPolicy.from_settings()
    cutoff = now - policy.minute_retention
    deleted = 0
    with connection.cursor() as cursor:
        for table in ("telemetry_rollup_frames_minute", "telemetry_rollup_detections_minute"):
            cursor.execute(
                sql.SQL(
                    "DELETE FROM {table} WHERE id IN "
                    "(SELECT id FROM {table} WHERE scope = ANY(%(scopes)s) AND bucket < %(cutoff)s LIMIT %(limit)s)"
                ).format(table=sql.Identifier(table)),
                {"scopes": ["camera", "zone", "fleet"], "cutoff": cutoff, "limit": policy.prune_batch_size},
            )
            deleted += cursor.rowcount
    return deleted


def rollup_lag_alert_refresh(*, now: datetime | None = None, policy: RollupPolicy | None = None) -> timedelta | None:
    """Raise the `rollup_lag` alert when the watermark is further behind `now` than ROLLUP_LAG_ALERT_SECONDS,
    resolve it when it is not. Returns the lag (None before the first run)."""
    now = now or timezone.now()
    policy = policy or RollupPolicy.from_settings()
    lag = rollup_lag(now=now)
    if lag is not None and lag > policy.lag_alert_after:
        alert_raise(
            kind=AlertKind.ROLLUP_LAG,
            subject=WATERMARK_NAME,
            severity=AlertSeverity.WARNING,
            message=(
                f"Rollups are {int(lag.total_seconds())} s behind (alert past "
                f"{int(policy.lag_alert_after.total_seconds())} s): analytics and dashboards miss recent data."
            ),
            details={"lag_seconds": round(lag.total_seconds(), 1)},
            now=now,
        )
    else:
        alert_resolve(kind=AlertKind.ROLLUP_LAG, subject=WATERMARK_NAME, now=now)
    return lag
