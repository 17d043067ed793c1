"""Count objects, line crossings and region occupancy/dwell from tracked detections (docs/traffic.md).

`traffic_refresh_window` is telemetry's rollup window hook (registered in traffic.apps): every rollup step,
refresh or `manage.py rollups rebuild`, calls it in the same transaction with the step's [start, end). It widens
the range to whole 15-minute buckets [q0, q1) and recomputes everything those buckets hold from the raw
detections, so a repeated or overlapping step gives the same rows, and late rows within the rollup grace
window are picked up by the next step (its start is the watermark minus the grace).

How things are counted (the definitions the tests and the simulator's truth share):

* An *object* is a track: (camera, track_id). Detections without a track id are detections only.
* A track is counted in every bucket in which it was observed: a 15-minute, an hour and a day count are each
  the distinct tracks of that bucket, so an hour is not the sum of its quarters when tracks span a boundary.
  A track's class in a bucket is the object type of its first observation in that bucket.
  Zone and fleet counts are sums of camera counts (a track belongs to one camera).
* A track's position is the bottom-centre of its bounding box. It *crosses* a line when two consecutive
  observations (no other observation between them, at most TRAFFIC_TRACK_MAX_GAP_SECONDS apart) lie on
  different sides of the line and the step between them intersects the line's segment. The crossing goes to
  the bucket of the second observation, under the line version in force at that moment, with the class of that
  observation; a track is counted at most once per line and direction (its first crossing that way).
* A track is *inside* a region at an observation whose position is in the polygon (PostgreSQL `point <@
  polygon`). Occupancy of a minute = distinct tracks inside during that minute; a bucket's max and mean are
  over its minutes (minutes with nobody inside count as 0). A track's dwell in a bucket = its last minus its
  first observation inside the region within that bucket; p50/p85 by class.

Day counts of objects are not recounted from a whole day of rows on every step: each track's first observation
of the day is kept (traffic_track_days), each 15-minute row carries how many tracks were first seen of their
day in it (`first_in_day`), and a day row is the sum of those.
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg import sql

from telemetry.models import NIL_SCOPE_ID
from telemetry.services.rollups import raw_rows_source
from traffic.conf import track_max_gap_seconds

__all__ = ["QUARTER", "quarter_ceil", "quarter_floor", "traffic_refresh_window"]

logger = logging.getLogger(__name__)

QUARTER = timedelta(minutes=15)
OBSERVATION_COLUMNS = ["camera_id", "track_id", "timestamp", "object_type", "bbox_x1", "bbox_x2", "bbox_y2"]
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NIL = sql.SQL("{}::uuid").format(sql.Literal(str(NIL_SCOPE_ID)))


def quarter_floor(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def quarter_ceil(moment: datetime) -> datetime:
    floored = quarter_floor(moment)
    return floored if floored == moment else floored + QUARTER


def _q(column: str) -> sql.Composable:
    """The 15-minute bucket of a timestamp column (UTC, aligned to :00/:15/:30/:45)."""
    return sql.SQL("date_bin('15 minutes', {}, '2000-01-01 00:00:00+00'::timestamptz)").format(sql.SQL(column))


def _run(statement: str | sql.Composable, params: dict[str, Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(statement) if isinstance(statement, str) else statement, params)
        return max(cursor.rowcount, 0)


_TEMP_TABLES = [
    "traffic_obs",
    "traffic_owners",
    "traffic_touched",
    "traffic_day_changes",
    "traffic_qkeys",
    "traffic_hkeys",
    "traffic_dkeys",
    "traffic_scope_keys",
    "traffic_cross_hkeys",
    "traffic_cross_dkeys",
    "traffic_line_geometry",
    "traffic_new_crossings",
    "traffic_cross_keys",
    "traffic_region_geometry",
    "traffic_inside",
    "traffic_region_keys",
]


def traffic_refresh_window(*, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, int]:
    """Recompute the traffic counts of every 15-minute bucket touched by [start, end), in the caller's
    transaction. Returns rows written per table."""
    now = now or timezone.now()
    q0, q1 = quarter_floor(start), quarter_ceil(end)
    read_start = q0 - timedelta(seconds=track_max_gap_seconds())
    params = {
        "q0": q0,
        "q1": q1,
        "read_start": read_start,
        "max_gap": timedelta(seconds=track_max_gap_seconds()),
        "now": now,
    }
    # Temporary tables live only until the step's transaction ends (ON COMMIT DROP), so they are safe behind
    # PgBouncer's transaction pooling; dropped first in case one transaction runs two steps.
    _run(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(map(sql.Identifier, _TEMP_TABLES))))
    # The detections of the window from every tier: a rebuild of a range gone cold counts the same as before.
    detections = raw_rows_source("detections", OBSERVATION_COLUMNS, read_start, q1)
    _run(
        sql.SQL(
            """
            CREATE TEMP TABLE traffic_obs ON COMMIT DROP AS
            SELECT camera_id, track_id, "timestamp" AS ts, object_type,
                   (bbox_x1 + bbox_x2) / 2 AS x, bbox_y2 AS y
            FROM {detections} AS detections
            WHERE track_id IS NOT NULL AND "timestamp" >= %(read_start)s AND "timestamp" < %(q1)s
            """
        ).format(detections=detections),
        params,
    )
    _run("ANALYZE traffic_obs")
    _owners()
    written = {"traffic_track_quarters": _objects(params)}
    written["traffic_line_crossings"] = _crossings(params)
    written["traffic_region_counts"] = _regions(params)
    return written


def _owners() -> None:
    """The camera and zone of every camera, line and region, in a temporary table the count queries join.

    On a Citus cluster (docs/scaling.md) cameras is a reference table and lines and regions are Citus-local
    tables, while the count tables are plain coordinator tables: Citus cannot plan an INSERT … SELECT with
    parameters that mixes them ("relation traffic_track_quarters is not distributed"). Read once here, the
    owners make every count query plain PostgreSQL, on one node as on the cluster. Small: one row per camera,
    line and region."""
    _run(
        """
        CREATE TEMP TABLE traffic_owners ON COMMIT DROP AS
        SELECT cameras.id, cameras.id AS camera_id, cameras.zone_id FROM cameras
        UNION ALL
        SELECT lines.id, lines.camera_id, cameras.zone_id
        FROM traffic_lines AS lines LEFT JOIN cameras ON cameras.id = lines.camera_id
        UNION ALL
        SELECT regions.id, regions.camera_id, cameras.zone_id
        FROM traffic_regions AS regions LEFT JOIN cameras ON cameras.id = regions.camera_id
        """
    )
    _run("CREATE INDEX ON traffic_owners (id)")
    _run("ANALYZE traffic_owners")


# --- objects -------------------------------------------------------------------------------------------------


def _objects(params: dict[str, Any]) -> int:
    _run(
        """
        CREATE TEMP TABLE traffic_touched ON COMMIT DROP AS
        WITH removed AS (
            DELETE FROM traffic_track_quarters WHERE bucket >= %(q0)s AND bucket < %(q1)s
            RETURNING camera_id, track_id, bucket
        )
        SELECT camera_id, track_id, date_trunc('day', bucket, 'UTC') AS day FROM removed
        """,
        params,
    )
    quarters = _run(
        sql.SQL(
            """
            WITH added AS (
                INSERT INTO traffic_track_quarters
                    (camera_id, track_id, bucket, object_type, first_seen, last_seen, observations)
                SELECT camera_id, track_id, {bucket}, (array_agg(object_type ORDER BY ts, object_type))[1],
                       min(ts), max(ts), count(*)
                FROM traffic_obs WHERE ts >= %(q0)s
                GROUP BY camera_id, track_id, {bucket}
                RETURNING camera_id, track_id, bucket
            )
            INSERT INTO traffic_touched SELECT camera_id, track_id, date_trunc('day', bucket, 'UTC') FROM added
            """
        ).format(bucket=_q("ts")),
        params,
    )
    # Each touched track's first observation of its day, recomputed from its 15-minute rows of that day; the
    # buckets of its old and new first observation get their `first_in_day` recounted.
    _run(
        sql.SQL(
            """
            CREATE TEMP TABLE traffic_day_changes ON COMMIT DROP AS
            WITH keys AS (SELECT DISTINCT camera_id, track_id, day FROM traffic_touched),
            removed AS (
                DELETE FROM traffic_track_days AS days USING keys
                WHERE days.camera_id = keys.camera_id AND days.track_id = keys.track_id AND days.day = keys.day
                RETURNING days.camera_id, days.first_seen
            )
            SELECT camera_id, {bucket} AS bucket FROM removed
            """
        ).format(bucket=_q("first_seen")),
        params,
    )
    _run(
        sql.SQL(
            """
            WITH keys AS (SELECT DISTINCT camera_id, track_id, day FROM traffic_touched),
            added AS (
                INSERT INTO traffic_track_days (camera_id, track_id, day, object_type, first_seen)
                SELECT quarters.camera_id, quarters.track_id, keys.day,
                       (array_agg(quarters.object_type ORDER BY quarters.first_seen, quarters.object_type))[1],
                       min(quarters.first_seen)
                FROM keys JOIN traffic_track_quarters AS quarters
                  ON quarters.camera_id = keys.camera_id AND quarters.track_id = keys.track_id
                 AND quarters.bucket >= keys.day AND quarters.bucket < keys.day + interval '1 day'
                GROUP BY quarters.camera_id, quarters.track_id, keys.day
                RETURNING camera_id, first_seen
            )
            INSERT INTO traffic_day_changes SELECT camera_id, {bucket} FROM added
            """
        ).format(bucket=_q("first_seen")),
        params,
    )
    _run(
        """
        CREATE TEMP TABLE traffic_qkeys ON COMMIT DROP AS
        SELECT DISTINCT camera_id, bucket FROM (
            SELECT camera_id, bucket FROM traffic_day_changes
            UNION ALL
            SELECT camera_id, bucket FROM traffic_track_quarters WHERE bucket >= %(q0)s AND bucket < %(q1)s
            UNION ALL
            SELECT camera_id, bucket FROM traffic_object_counts
            WHERE granularity = '15min' AND scope = 'camera' AND bucket >= %(q0)s AND bucket < %(q1)s
        ) AS keys
        """,
        params,
    )
    # Camera rows: 15 minutes (objects and first_in_day), then hours (distinct tracks of the hour, class of the
    # track's earliest quarter row), then days (sum of first_in_day).
    _run(
        """
        DELETE FROM traffic_object_counts AS counts USING traffic_qkeys AS keys
        WHERE counts.granularity = '15min' AND counts.scope = 'camera'
          AND counts.scope_id = keys.camera_id AND counts.bucket = keys.bucket
        """
    )
    rows = _run(
        """
        INSERT INTO traffic_object_counts
            (granularity, scope, scope_id, camera_id, zone_id, bucket, object_type, objects, first_in_day,
             refreshed_at)
        SELECT '15min', 'camera', keys.camera_id, keys.camera_id, owners.zone_id, keys.bucket, counted.object_type,
               sum(counted.objects), sum(counted.first_in_day), %(now)s
        FROM traffic_qkeys AS keys
        LEFT JOIN traffic_owners AS owners ON owners.id = keys.camera_id
        CROSS JOIN LATERAL (
            SELECT object_type, count(*) AS objects, 0 AS first_in_day FROM traffic_track_quarters AS quarters
            WHERE quarters.bucket = keys.bucket AND quarters.camera_id = keys.camera_id GROUP BY object_type
            UNION ALL
            SELECT object_type, 0, count(*) FROM traffic_track_days AS days
            WHERE days.camera_id = keys.camera_id AND days.first_seen >= keys.bucket
              AND days.first_seen < keys.bucket + interval '15 minutes'
            GROUP BY object_type
        ) AS counted
        GROUP BY keys.camera_id, owners.zone_id, keys.bucket, counted.object_type
        """,
        params,
    )
    _run(
        """
        CREATE TEMP TABLE traffic_hkeys ON COMMIT DROP AS
        SELECT DISTINCT camera_id, date_trunc('hour', bucket, 'UTC') AS bucket FROM traffic_qkeys;
        CREATE TEMP TABLE traffic_dkeys ON COMMIT DROP AS
        SELECT DISTINCT camera_id, date_trunc('day', bucket, 'UTC') AS bucket FROM traffic_qkeys;
        DELETE FROM traffic_object_counts AS counts USING traffic_hkeys AS keys
        WHERE counts.granularity = 'hour' AND counts.scope = 'camera'
          AND counts.scope_id = keys.camera_id AND counts.bucket = keys.bucket;
        DELETE FROM traffic_object_counts AS counts USING traffic_dkeys AS keys
        WHERE counts.granularity = 'day' AND counts.scope = 'camera'
          AND counts.scope_id = keys.camera_id AND counts.bucket = keys.bucket
        """
    )
    rows += _run(
        """
        INSERT INTO traffic_object_counts
            (granularity, scope, scope_id, camera_id, zone_id, bucket, object_type, objects, refreshed_at)
        SELECT 'hour', 'camera', keys.camera_id, keys.camera_id, owners.zone_id, keys.bucket, tracks.object_type,
               count(*), %(now)s
        FROM traffic_hkeys AS keys
        LEFT JOIN traffic_owners AS owners ON owners.id = keys.camera_id
        CROSS JOIN LATERAL (
            SELECT DISTINCT ON (quarters.track_id) quarters.object_type
            FROM traffic_track_quarters AS quarters
            WHERE quarters.bucket >= keys.bucket AND quarters.bucket < keys.bucket + interval '1 hour'
              AND quarters.camera_id = keys.camera_id
            ORDER BY quarters.track_id, quarters.bucket
        ) AS tracks
        GROUP BY keys.camera_id, owners.zone_id, keys.bucket, tracks.object_type
        """,
        params,
    )
    rows += _run(
        """
        INSERT INTO traffic_object_counts
            (granularity, scope, scope_id, camera_id, zone_id, bucket, object_type, objects, refreshed_at)
        SELECT 'day', 'camera', keys.camera_id, keys.camera_id, owners.zone_id, keys.bucket, counts.object_type,
               sum(counts.first_in_day), %(now)s
        FROM traffic_dkeys AS keys
        LEFT JOIN traffic_owners AS owners ON owners.id = keys.camera_id
        JOIN traffic_object_counts AS counts
          ON counts.granularity = '15min' AND counts.scope = 'camera' AND counts.scope_id = keys.camera_id
         AND counts.bucket >= keys.bucket AND counts.bucket < keys.bucket + interval '1 day'
        GROUP BY keys.camera_id, owners.zone_id, keys.bucket, counts.object_type
        HAVING sum(counts.first_in_day) > 0
        """,
        params,
    )
    rows += _scope_sums(params)
    return quarters + rows


def _scope_sums(params: dict[str, Any]) -> int:
    """Zone and fleet rows of every bucket whose camera rows were recomputed: sums of the camera rows."""
    _run(
        """
        CREATE TEMP TABLE traffic_scope_keys ON COMMIT DROP AS
        SELECT DISTINCT '15min'::varchar AS granularity, bucket FROM traffic_qkeys
        UNION SELECT DISTINCT 'hour', bucket FROM traffic_hkeys
        UNION SELECT DISTINCT 'day', bucket FROM traffic_dkeys;
        DELETE FROM traffic_object_counts AS counts USING traffic_scope_keys AS keys
        WHERE counts.granularity = keys.granularity AND counts.bucket = keys.bucket AND counts.scope <> 'camera'
        """
    )
    return _run(
        sql.SQL(
            """
            INSERT INTO traffic_object_counts
                (granularity, scope, scope_id, camera_id, zone_id, bucket, object_type, objects, first_in_day,
                 refreshed_at)
            SELECT counts.granularity,
                   CASE GROUPING(counts.zone_id) WHEN 0 THEN 'zone' ELSE 'fleet' END,
                   CASE GROUPING(counts.zone_id) WHEN 0 THEN coalesce(counts.zone_id, {nil}) ELSE {nil} END,
                   NULL, CASE GROUPING(counts.zone_id) WHEN 0 THEN counts.zone_id END,
                   counts.bucket, counts.object_type, sum(counts.objects), sum(counts.first_in_day), %(now)s
            FROM traffic_scope_keys AS keys
            JOIN traffic_object_counts AS counts
              ON counts.granularity = keys.granularity AND counts.bucket = keys.bucket AND counts.scope = 'camera'
            GROUP BY GROUPING SETS (
                (counts.granularity, counts.bucket, counts.object_type, counts.zone_id),
                (counts.granularity, counts.bucket, counts.object_type)
            )
            """
        ).format(nil=_NIL),
        params,
    )


# --- counting lines ------------------------------------------------------------------------------------------


def _crossings(params: dict[str, Any]) -> int:
    _run(
        """
        CREATE TEMP TABLE traffic_line_geometry ON COMMIT DROP AS
        SELECT versions.id AS version_id, versions.line_id, lines.camera_id, versions.valid_from,
               coalesce(versions.valid_until, 'infinity'::timestamptz) AS valid_until,
               versions.x1, versions.y1, versions.x2, versions.y2, versions.in_side = 'right' AS in_right
        FROM traffic_line_versions AS versions JOIN traffic_lines AS lines ON lines.id = versions.line_id
        WHERE versions.valid_from < %(q1)s AND (versions.valid_until IS NULL OR versions.valid_until > %(q0)s)
        """,
        params,
    )
    # side = (B - A) x (P - A): > 0 is the right of A -> B on the image (y grows downwards). A step P -> C crosses
    # the segment AB when P and C are on different sides of AB and A and B on different sides of PC. A point
    # exactly on the line counts as the left side.
    _run(
        """
        CREATE TEMP TABLE traffic_new_crossings ON COMMIT DROP AS
        WITH steps AS (
            SELECT camera_id, track_id, ts, object_type, x, y,
                   lag(ts) OVER track AS previous_ts, lag(x) OVER track AS px, lag(y) OVER track AS py
            FROM traffic_obs WHERE camera_id IN (SELECT camera_id FROM traffic_line_geometry)
            WINDOW track AS (PARTITION BY camera_id, track_id ORDER BY ts)
        ),
        sided AS (
            SELECT steps.camera_id, steps.track_id, steps.ts, steps.object_type, geometry.line_id,
                   geometry.version_id, geometry.in_right,
                   (geometry.x2 - geometry.x1) * (steps.py - geometry.y1)
                     - (geometry.y2 - geometry.y1) * (steps.px - geometry.x1) > 0 AS previous_right,
                   (geometry.x2 - geometry.x1) * (steps.y - geometry.y1)
                     - (geometry.y2 - geometry.y1) * (steps.x - geometry.x1) > 0 AS current_right,
                   (steps.x - steps.px) * (geometry.y1 - steps.py)
                     - (steps.y - steps.py) * (geometry.x1 - steps.px) > 0 AS a_right,
                   (steps.x - steps.px) * (geometry.y2 - steps.py)
                     - (steps.y - steps.py) * (geometry.x2 - steps.px) > 0 AS b_right
            FROM steps JOIN traffic_line_geometry AS geometry
              ON geometry.camera_id = steps.camera_id
             AND steps.ts >= geometry.valid_from AND steps.ts < geometry.valid_until
            WHERE steps.ts >= %(q0)s AND steps.previous_ts IS NOT NULL AND steps.ts - steps.previous_ts <= %(max_gap)s
        )
        SELECT DISTINCT ON (line_id, camera_id, track_id, direction)
               line_id, version_id, camera_id, track_id, direction, ts, object_type
        FROM (
            SELECT *, CASE WHEN current_right = in_right THEN 'in' ELSE 'out' END AS direction FROM sided
            WHERE previous_right <> current_right AND a_right <> b_right
        ) AS crossed
        ORDER BY line_id, camera_id, track_id, direction, ts, object_type
        """,
        params,
    )
    _run(
        sql.SQL(
            """
            CREATE TEMP TABLE traffic_cross_keys ON COMMIT DROP AS
            WITH removed AS (
                DELETE FROM traffic_line_crossings WHERE "timestamp" >= %(q0)s AND "timestamp" < %(q1)s
                RETURNING line_id, "timestamp"
            )
            SELECT line_id, {bucket} AS bucket FROM removed
            """
        ).format(bucket=_q('"timestamp"')),
        params,
    )
    # A crossing kept from outside the window that an earlier one now replaces: its bucket loses it.
    _run(
        sql.SQL(
            """
            INSERT INTO traffic_cross_keys
            SELECT stored.line_id, {bucket} FROM traffic_line_crossings AS stored
            JOIN traffic_new_crossings AS new USING (line_id, camera_id, track_id, direction)
            WHERE new.ts < stored."timestamp"
            """
        ).format(bucket=_q('stored."timestamp"')),
        params,
    )
    written = _run(
        sql.SQL(
            """
            WITH upserted AS (
                INSERT INTO traffic_line_crossings
                    (line_id, version_id, camera_id, track_id, direction, "timestamp", object_type)
                SELECT line_id, version_id, camera_id, track_id, direction, ts, object_type FROM traffic_new_crossings
                ON CONFLICT (line_id, camera_id, track_id, direction) DO UPDATE SET
                    "timestamp" = EXCLUDED."timestamp", object_type = EXCLUDED.object_type,
                    version_id = EXCLUDED.version_id
                WHERE EXCLUDED."timestamp" < traffic_line_crossings."timestamp"
                RETURNING line_id, "timestamp"
            )
            INSERT INTO traffic_cross_keys SELECT line_id, {bucket} FROM upserted
            """
        ).format(bucket=_q('"timestamp"')),
        params,
    )
    _run(
        """
        CREATE TEMP TABLE traffic_cross_hkeys ON COMMIT DROP AS
        SELECT DISTINCT line_id, date_trunc('hour', bucket, 'UTC') AS bucket FROM traffic_cross_keys;
        CREATE TEMP TABLE traffic_cross_dkeys ON COMMIT DROP AS
        SELECT DISTINCT line_id, date_trunc('day', bucket, 'UTC') AS bucket FROM traffic_cross_keys;
        DELETE FROM traffic_line_counts AS counts
        USING (SELECT DISTINCT line_id, bucket FROM traffic_cross_keys) AS keys
        WHERE counts.granularity = '15min' AND counts.line_id = keys.line_id AND counts.bucket = keys.bucket;
        DELETE FROM traffic_line_counts AS counts USING traffic_cross_hkeys AS keys
        WHERE counts.granularity = 'hour' AND counts.line_id = keys.line_id AND counts.bucket = keys.bucket;
        DELETE FROM traffic_line_counts AS counts USING traffic_cross_dkeys AS keys
        WHERE counts.granularity = 'day' AND counts.line_id = keys.line_id AND counts.bucket = keys.bucket
        """
    )
    for granularity, keys, span in (
        ("15min", "(SELECT DISTINCT line_id, bucket FROM traffic_cross_keys)", "15 minutes"),
        ("hour", "traffic_cross_hkeys", "1 hour"),
        ("day", "traffic_cross_dkeys", "1 day"),
    ):
        written += _run(
            sql.SQL(
                """
                INSERT INTO traffic_line_counts
                    (granularity, bucket, line_id, camera_id, zone_id, direction, object_type, crossings,
                     refreshed_at)
                SELECT {granularity}, keys.bucket, keys.line_id, lines.camera_id, lines.zone_id,
                       crossings.direction, crossings.object_type, count(*), %(now)s
                FROM {keys} AS keys
                JOIN traffic_owners AS lines ON lines.id = keys.line_id
                JOIN traffic_line_crossings AS crossings
                  ON crossings.line_id = keys.line_id AND crossings."timestamp" >= keys.bucket
                 AND crossings."timestamp" < keys.bucket + {span}::interval
                GROUP BY keys.bucket, keys.line_id, lines.camera_id, lines.zone_id, crossings.direction,
                         crossings.object_type
                """
            ).format(granularity=sql.Literal(granularity), keys=sql.SQL(keys), span=sql.Literal(span)),
            params,
        )
    return written


# --- regions -------------------------------------------------------------------------------------------------


def _regions(params: dict[str, Any]) -> int:
    _run(
        """
        CREATE TEMP TABLE traffic_region_geometry ON COMMIT DROP AS
        SELECT versions.region_id, regions.camera_id, versions.valid_from,
               coalesce(versions.valid_until, 'infinity'::timestamptz) AS valid_until,
               versions.polygon::polygon AS polygon
        FROM traffic_region_versions AS versions JOIN traffic_regions AS regions ON regions.id = versions.region_id
        WHERE versions.valid_from < %(q1)s AND (versions.valid_until IS NULL OR versions.valid_until > %(q0)s)
        """,
        params,
    )
    _run(
        """
        CREATE TEMP TABLE traffic_inside ON COMMIT DROP AS
        SELECT geometry.region_id, observations.track_id, observations.ts, observations.object_type
        FROM traffic_obs AS observations
        JOIN traffic_region_geometry AS geometry
          ON geometry.camera_id = observations.camera_id
         AND observations.ts >= geometry.valid_from AND observations.ts < geometry.valid_until
        WHERE observations.ts >= %(q0)s AND point(observations.x, observations.y) <@ geometry.polygon
        """,
        params,
    )
    _run(
        sql.SQL(
            """
            CREATE TEMP TABLE traffic_region_keys ON COMMIT DROP AS
            WITH removed_minutes AS (
                DELETE FROM traffic_region_minutes WHERE minute >= %(q0)s AND minute < %(q1)s
                RETURNING region_id, minute
            ),
            removed_tracks AS (
                DELETE FROM traffic_region_track_quarters WHERE bucket >= %(q0)s AND bucket < %(q1)s
                RETURNING region_id, bucket
            )
            SELECT region_id, {minute_bucket} AS bucket FROM removed_minutes
            UNION SELECT region_id, bucket FROM removed_tracks
            UNION SELECT DISTINCT region_id, {inside_bucket} FROM traffic_inside
            """
        ).format(minute_bucket=_q("minute"), inside_bucket=_q("ts")),
        params,
    )
    written = _run(
        """
        INSERT INTO traffic_region_minutes (region_id, minute, tracks)
        SELECT region_id, date_trunc('minute', ts, 'UTC'), count(DISTINCT track_id)
        FROM traffic_inside GROUP BY region_id, date_trunc('minute', ts, 'UTC')
        """
    )
    written += _run(
        sql.SQL(
            """
            INSERT INTO traffic_region_track_quarters (region_id, track_id, bucket, object_type, first_seen, last_seen)
            SELECT region_id, track_id, {bucket}, (array_agg(object_type ORDER BY ts, object_type))[1], min(ts), max(ts)
            FROM traffic_inside GROUP BY region_id, track_id, {bucket}
            """
        ).format(bucket=_q("ts"))
    )
    for granularity, keys, span, minutes in (
        ("15min", "(SELECT DISTINCT region_id, bucket FROM traffic_region_keys)", "15 minutes", 15),
        ("hour", "(SELECT DISTINCT region_id, date_trunc('hour', bucket, 'UTC') AS bucket FROM traffic_region_keys)",
         "1 hour", 60),
        ("day", "(SELECT DISTINCT region_id, date_trunc('day', bucket, 'UTC') AS bucket FROM traffic_region_keys)",
         "1 day", 1440),
    ):  # fmt: skip
        written += _region_counts(granularity, keys, span, minutes, params)
    return written


def _region_counts(granularity: str, keys: str, span: str, minutes: int, params: dict[str, Any]) -> int:
    names = {"granularity": sql.Literal(granularity), "keys": sql.SQL(keys), "span": sql.Literal(span)}
    _run(
        sql.SQL(
            """
            DELETE FROM traffic_region_counts AS counts USING {keys} AS keys
            WHERE counts.granularity = {granularity} AND counts.region_id = keys.region_id
              AND counts.bucket = keys.bucket
            """
        ).format(**names)
    )
    return _run(
        sql.SQL(
            """
            WITH keys AS MATERIALIZED (SELECT * FROM {keys} AS keys),
            tracks AS (
                SELECT keys.region_id, keys.bucket, quarters.track_id,
                       (array_agg(quarters.object_type ORDER BY quarters.first_seen, quarters.object_type))[1]
                           AS object_type,
                       extract(epoch FROM max(quarters.last_seen) - min(quarters.first_seen)) AS dwell
                FROM keys JOIN traffic_region_track_quarters AS quarters
                  ON quarters.region_id = keys.region_id AND quarters.bucket >= keys.bucket
                 AND quarters.bucket < keys.bucket + {span}::interval
                GROUP BY keys.region_id, keys.bucket, quarters.track_id
            ),
            dwell AS (
                SELECT region_id, bucket, coalesce(object_type, '') AS object_type, count(*) AS tracks,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY dwell) AS p50,
                       percentile_cont(0.85) WITHIN GROUP (ORDER BY dwell) AS p85
                FROM tracks GROUP BY GROUPING SETS ((region_id, bucket, object_type), (region_id, bucket))
            ),
            occupancy AS (
                SELECT keys.region_id, keys.bucket, max(minutes.tracks) AS occupancy_max,
                       sum(minutes.tracks)::float / {minutes} AS occupancy_mean
                FROM keys JOIN traffic_region_minutes AS minutes
                  ON minutes.region_id = keys.region_id AND minutes.minute >= keys.bucket
                 AND minutes.minute < keys.bucket + {span}::interval
                GROUP BY keys.region_id, keys.bucket
            )
            INSERT INTO traffic_region_counts
                (granularity, bucket, region_id, camera_id, zone_id, object_type, tracks, dwell_p50_seconds,
                 dwell_p85_seconds, occupancy_max, occupancy_mean, refreshed_at)
            SELECT {granularity}, dwell.bucket, dwell.region_id, regions.camera_id, regions.zone_id, dwell.object_type,
                   dwell.tracks, dwell.p50, dwell.p85,
                   CASE WHEN dwell.object_type = '' THEN occupancy.occupancy_max END,
                   CASE WHEN dwell.object_type = '' THEN occupancy.occupancy_mean END, %(now)s
            FROM dwell
            JOIN traffic_owners AS regions ON regions.id = dwell.region_id
            LEFT JOIN occupancy ON occupancy.region_id = dwell.region_id AND occupancy.bucket = dwell.bucket
            """
        ).format(**names, minutes=sql.Literal(minutes)),
        params,
    )
