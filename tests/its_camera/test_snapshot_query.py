"""SnapshotQuery: a second connection (ADBC) reads exactly what the calling transaction sees."""

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from its_camera.db.snapshot_query import SnapshotQuery, SnapshotQueryUnavailable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def probe_table():
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as setup:
        setup.execute("CREATE TABLE snapshot_probe (n bigint, label text, seen timestamptz)")
        setup.execute("INSERT INTO snapshot_probe VALUES (1, 'a', '2026-11-10 09:00+00'), (2, NULL, NULL)")
    yield params
    with psycopg.connect(**params, autocommit=True) as cleanup:
        cleanup.execute("DROP TABLE snapshot_probe")


def read_all(cursor: psycopg.Cursor, **settings: str) -> tuple[list[dict], SnapshotQuery]:
    query = SnapshotQuery(cursor, sql.SQL("SELECT n, label, seen FROM snapshot_probe ORDER BY n"), settings=settings)
    with query:
        rows = [row for batch in query for row in batch.to_pylist()]
    return rows, query


def test_the_second_connection_reads_the_transactions_snapshot_not_rows_committed_after_it(probe_table):
    with psycopg.connect(**probe_table) as conn, conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM snapshot_probe")  # the transaction's snapshot is taken here
        with psycopg.connect(**probe_table, autocommit=True) as other:
            other.execute("INSERT INTO snapshot_probe VALUES (3, 'committed after the snapshot', now())")

        rows, query = read_all(cursor, statement_timeout="60s")

    assert [row["n"] for row in rows] == [1, 2]
    assert query.rows == 2
    assert [row["label"] for row in rows] == ["a", None]
    assert rows[0]["seen"].isoformat() == "2026-11-10T09:00:00+00:00"


def test_settings_apply_to_the_second_connections_transaction_only(probe_table):
    with psycopg.connect(**probe_table) as conn, conn.cursor() as cursor:
        statement = sql.SQL("SELECT current_setting('statement_timeout') AS timeout")
        query = SnapshotQuery(cursor, statement, settings={"statement_timeout": "42s"})
        with query:
            assert [row for batch in query for row in batch.to_pylist()] == [{"timeout": "42s"}]


def test_a_snapshot_that_cannot_be_imported_is_reported_as_unavailable(probe_table, monkeypatch):
    with psycopg.connect(**probe_table) as conn, conn.cursor() as cursor:
        # A snapshot id the server does not know (as when the exporting transaction has ended).
        monkeypatch.setattr(SnapshotQuery, "_exported_snapshot", lambda self: "00000003-0000001B-1", raising=True)
        with (
            pytest.raises(SnapshotQueryUnavailable, match="snapshot"),
            SnapshotQuery(cursor, sql.SQL("SELECT 1"), settings={}),
        ):
            pass
