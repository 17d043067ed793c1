"""The seed's monitoring queries, for the admin health page (docs/observability.md).

Every query reads catalog or statistics views only, has a LIMIT, and runs in its own transaction with
a short statement_timeout (SET LOCAL: works through PgBouncer's transaction pooling too), so a slow or
failing section shows its error instead of taking the page down.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from its_camera import events, metrics
from its_camera.db.citus import total_relation_size_sql

logger = logging.getLogger(__name__)

SECTION_TIMEOUT_MS = 2000
ROW_LIMIT = 50


@dataclass
class Section:
    """One block of the health page: a titled table, or an error, with a hint for the operator."""

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    note: str = ""
    error: str = ""


def _query(sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(SECTION_TIMEOUT_MS)])
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description or []]
        return columns, cursor.fetchall()


def _section(key: str, title: str, build: Callable[[Section], None]) -> Section:
    section = Section(key=key, title=title)
    try:
        build(section)
    except DatabaseError as exc:
        logger.warning("Health page section %s failed: %s", key, exc)
        section.error = f"{type(exc).__name__}: {exc}".strip()
    return section


def pool_section() -> Section:
    def build(section: Section) -> None:
        stats = metrics.pool_stats()
        section.columns = ["counter", "value"]
        section.rows = sorted(stats.items())
        section.note = (
            "Django's psycopg pool of the process that served this page (each web and worker process has its "
            "own; /metrics sums them). pool_size open connections, pool_available idle, requests_waiting queued."
        )
        if not stats:
            section.note = "Connection pooling is off for this database alias (e.g. behind PgBouncer)."

    return _section("pool", "Connection pool", build)


def activity_section() -> Section:
    def build(section: Section) -> None:
        section.columns, section.rows = _query(
            """
            SELECT coalesce(nullif(application_name, ''), '(none)') AS application_name,
                   coalesce(state, '(background)') AS state,
                   count(*) AS connections,
                   max(now() - state_change) AS longest_in_state
            FROM pg_stat_activity
            WHERE datname = current_database()
            GROUP BY 1, 2
            ORDER BY 3 DESC
            LIMIT %s
            """,
            [ROW_LIMIT],
        )
        section.note = f"This application connects as application_name = {settings.DB_APPLICATION_NAME!r}."

    return _section("activity", "Connections by application and state (pg_stat_activity)", build)


def long_running_section() -> Section:
    def build(section: Section) -> None:
        section.columns, section.rows = _query(
            """
            SELECT pid, application_name, state, wait_event_type, wait_event,
                   now() - query_start AS running_for, left(query, 200) AS query
            FROM pg_stat_activity
            WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()
            ORDER BY query_start
            LIMIT 10
            """
        )

    return _section("long-running", "Longest running statements", build)


STATEMENTS_HOWTO = (
    "pg_stat_statements is not available. To enable it: add it to shared_preload_libraries in "
    "postgresql.conf (shared_preload_libraries = 'pg_stat_statements'), restart PostgreSQL, then run "
    "CREATE EXTENSION pg_stat_statements; in this database (as a superuser)."
)


def statements_section(contains: str = "") -> Section:
    def build(section: Section) -> None:
        _, installed = _query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if not installed:
            section.note = STATEMENTS_HOWTO
            return
        try:
            section.columns, section.rows = _query(
                """
                SELECT left(query, 300) AS query, calls,
                       round(total_exec_time::numeric, 1) AS total_ms,
                       round(mean_exec_time::numeric, 2) AS mean_ms,
                       rows
                FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND (%s = '' OR query ILIKE '%%' || %s || '%%')
                ORDER BY total_exec_time DESC
                LIMIT 20
                """,
                [contains, contains],
            )
        except DatabaseError as exc:  # installed but not preloaded: the view raises
            section.note = f"{STATEMENTS_HOWTO} ({exc})".strip()
            return
        section.note = "Top 20 by total execution time" + (f", query containing {contains!r}." if contains else ".")

    return _section("statements", "Top queries (pg_stat_statements)", build)


def index_usage_section() -> Section:
    def build(section: Section) -> None:
        section.columns, section.rows = _query(
            """
            SELECT relname AS table_name, indexrelname AS index_name, idx_scan, idx_tup_read, idx_tup_fetch,
                   pg_size_pretty(pg_relation_size(indexrelid)) AS size
            FROM pg_stat_user_indexes
            ORDER BY idx_tup_read DESC
            LIMIT %s
            """,
            [ROW_LIMIT],
        )

    return _section("index-usage", "Index usage (pg_stat_user_indexes)", build)


def unused_indexes_section() -> Section:
    def build(section: Section) -> None:
        section.columns, section.rows = _query(
            """
            SELECT relname AS table_name, indexrelname AS index_name,
                   pg_size_pretty(pg_relation_size(indexrelid)) AS size
            FROM pg_stat_user_indexes
            WHERE idx_scan = 0
            ORDER BY pg_relation_size(indexrelid) DESC
            LIMIT 20
            """
        )
        section.note = "Never scanned since statistics were reset; a partition's index counts separately."

    return _section("unused-indexes", "Unused indexes", build)


def table_sizes_section() -> Section:
    def build(section: Section) -> None:
        # A partitioned table has no storage of its own: its size is the sum over its partition tree.
        section.columns, section.rows = _query(
            f"""
            SELECT c.relname AS table_name,
                   CASE c.relkind WHEN 'p' THEN 'partitioned' ELSE 'table' END AS kind,
                   pg_size_pretty(sizes.bytes) AS total_size,
                   sizes.rows_estimate::bigint AS rows_estimate
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL (
                SELECT sum({total_relation_size_sql("tree.relid")}) AS bytes,
                       sum(greatest(child.reltuples, 0)) AS rows_estimate
                FROM pg_partition_tree(c.oid) tree
                JOIN pg_class child ON child.oid = tree.relid
                WHERE tree.isleaf
            ) sizes
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY sizes.bytes DESC NULLS LAST
            LIMIT %s
            """,  # noqa: S608 - our SQL, no input
            [ROW_LIMIT],
        )
        section.note = "Row counts are the planner's estimates (reltuples), never a COUNT."

    return _section("table-sizes", "Table sizes", build)


def partition_sizes_section() -> Section:
    def build(section: Section) -> None:
        size = total_relation_size_sql("child.oid")
        section.columns, section.rows = _query(
            f"""
            SELECT parent.relname AS table_name, child.relname AS partition,
                   pg_get_expr(child.relpartbound, child.oid) AS bounds,
                   pg_size_pretty({size}) AS total_size,
                   greatest(child.reltuples, 0)::bigint AS rows_estimate
            FROM pg_inherits i
            JOIN pg_class parent ON parent.oid = i.inhparent
            JOIN pg_class child ON child.oid = i.inhrelid
            JOIN pg_namespace n ON n.oid = parent.relnamespace
            WHERE n.nspname = current_schema() AND parent.relkind = 'p'
            ORDER BY {size} DESC
            LIMIT %s
            """,  # noqa: S608 - our SQL, no input
            [ROW_LIMIT],
        )
        section.note = "The largest partitions first. Partition health (ahead, default rows) is on its own page."

    return _section("partition-sizes", "Partition sizes", build)


def live_events_section() -> Section:
    section = Section(key="live-events", title="Live events (Redis)")
    try:
        info = events.buffer_info()
    except events.LiveEventsUnavailable as exc:
        section.error = f"Redis unavailable: {exc}"
        return section
    section.columns = ["measure", "value"]
    section.rows = [
        ("events buffered for replay", info["length"]),
        ("oldest buffered event id", info["oldest_id"]),
        ("newest event id", info["last_id"]),
        ("buffer size setting (LIVE_EVENTS_BUFFER_SIZE)", settings.LIVE_EVENTS_BUFFER_SIZE),
    ]
    return section


def health_sections(*, statements_contains: str = "") -> list[Section]:
    return [
        pool_section(),
        activity_section(),
        long_running_section(),
        statements_section(statements_contains),
        index_usage_section(),
        unused_indexes_section(),
        table_sizes_section(),
        partition_sizes_section(),
        live_events_section(),
    ]
