"""The Citus suite: the platform's database-shape-sensitive tests, run against a real Citus cluster.

Runs when `CITUS_URL` names a Citus coordinator database whose workers are registered, and the suite runs
against it (`make test-citus CITUS_URL=postgresql://…`, which sets DATABASE_URL to it); skipped, saying
why, otherwise. The database named is the suite's scratch database: once per session its platform tables
are dropped, then it is migrated, distributed (`manage.py citus distribute --shard-count 4`) and given the
current partitions; every test runs in a transaction that is rolled back, as in the single-node suite.
pytest-django does not create a test database here: Citus does not propagate CREATE DATABASE, and the
extension and the node registration are per database (docs/scaling.md).

The test modules in this folder import the single-node tests of the paths that depend on the database's
shape (ingest, retries, conflicts, heartbeats, status view, frame reads and status updates, rollups and
analytics, partitions and DEFAULT sweeps, retention and archive restore, storage tiers (seal, cold Parquet,
one timeline, cold restore and verify), traffic counts, admin pages, PgBouncer in front of the coordinator, the
browser tests in real Chromium), so both suites
assert the same results.
"""

import os
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from psycopg import sql

from tests.analytics.conftest import fleet, make_frames, now  # noqa: F401 - fixtures for the imported tests
from tests.archival.conftest import archive_root, make_partitions, policies  # noqa: F401
from tests.browser.conftest import browser, page  # noqa: F401
from tests.live.conftest import extra_server, live_redis, live_servers, open_stream  # noqa: F401
from tests.telemetry.conftest import camera, make_camera, partitions  # noqa: F401
from tests.traffic.conftest import make_scene, traffic_fleet  # noqa: F401


def _same_database(url: str) -> bool:
    wanted = psycopg.conninfo.conninfo_to_dict(url)
    current = settings.DATABASES["default"]
    return (
        str(wanted.get("dbname")) == str(current["NAME"])
        and str(wanted.get("port", 5432)) == str(current.get("PORT") or 5432)
        and str(wanted.get("host", "")) == str(current.get("HOST") or "")
    )


def citus_unavailable_reason() -> str | None:
    """Why the Citus suite cannot run here, or None when it can."""
    url = os.environ.get("CITUS_URL", "")
    if not url:
        return "CITUS_URL is not set (a Citus coordinator database with registered workers; docs/scaling.md)"
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            if connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone() is None:
                return f"CITUS_URL names a database without the citus extension: {url}"
            workers = connection.execute(
                "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive"
            ).fetchone()
            if not workers or not workers[0]:
                return "CITUS_URL names a coordinator with no registered worker (citus_add_node)"
    except psycopg.OperationalError as exc:
        return f"CITUS_URL cannot be reached: {exc}".splitlines()[0]
    if not _same_database(url):
        return "the suite runs against DATABASE_URL, not CITUS_URL: run `make test-citus CITUS_URL=…`"
    return None


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    citus_items = [item for item in items if str(item.fspath).startswith(here)]
    if not citus_items:
        return
    reason = citus_unavailable_reason()
    if reason:
        for item in citus_items:
            item.add_marker(pytest.mark.skip(reason=reason))


def _drop_platform_tables() -> None:
    """Start every session from an empty schema, as pytest-django's fresh test database would: a previous
    session's transactional tests flushed the rows that data migrations seed. Drops the tables and views of
    `public` that are not the citus extension's own (its views, e.g. citus_tables, live there too)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            " AND d.objid = c.oid AND d.deptype = 'e')"
        )
        relations = cursor.fetchall()
        # All tables in one statement: dropping cameras (or alerts) alone would cascade to a foreign key of a
        # table Citus keeps in its metadata only because of that key (alerts, notification deliveries), and
        # Citus would then turn it back into a plain table, which it refuses for a table with an identity
        # column ("cannot complete operation on a table with identity column").
        for kind in ("v", "table"):
            names = [name for relation_kind, name in relations if (relation_kind == "v") == (kind == "v")]
            if names:
                listed = ", ".join(f'"{name}"' for name in names)
                cursor.execute(f"DROP {'VIEW' if kind == 'v' else 'TABLE'} IF EXISTS {listed} CASCADE")


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> None:
    """The CITUS_URL database, migrated and distributed (instead of a test database pytest-django creates)."""
    reason = citus_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with django_db_blocker.unblock():
        _drop_platform_tables()
        call_command("migrate", verbosity=0)
        # Few shards: every partition a test creates is created once per shard, in the test's transaction.
        call_command("citus", "distribute", shard_count=4, verbosity=0)
        # Committed once, so the tests' `partitions` fixtures find them made instead of creating ~40
        # partitions (each once per shard) in every test's transaction; tests/citus/test_*partitions*.py
        # start from no partitions, as the single-node tests do (`without_partitions`).
        call_command("partitions", "apply", verbosity=0)
        _propagate_set_local_to_workers()


def _propagate_set_local_to_workers() -> None:
    """The tests that ask whether an index *can* serve a query `SET LOCAL enable_seqscan = off` first; on Citus
    the plan that matters is the worker's, and a SET LOCAL reaches the workers only with this (new sessions of
    the suite's database; the current connection is closed so the next one has it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("ALTER DATABASE {} SET citus.propagate_set_commands = 'local'").format(
                sql.Identifier(settings.DATABASES["default"]["NAME"])
            )
        )
    connection.close()


@pytest.fixture
def without_partitions(db: None) -> None:
    """Only the DEFAULT partitions, as on a freshly migrated database: the partitions made at session start are
    dropped inside the test's transaction (and so come back when it is rolled back)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("frame_metadata", "detections", "system_metrics"):
            cursor.execute(
                "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
                " WHERE pg_inherits.inhparent = %s::regclass AND child.relname <> %s",
                [table, f"{table}_default"],
            )
            for (partition,) in cursor.fetchall():
                cursor.execute(f'DROP TABLE "{partition}"')
