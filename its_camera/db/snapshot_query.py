"""A query's rows as Arrow record batches, read on a second connection that sees exactly what the calling
transaction sees.

Why a second connection: reading a big result through psycopg costs Python per row. `COPY … TO STDOUT` as CSV
(its_camera.db.copy_out) gets one libpq message per row, ~1.2 µs of Python each before any parsing, and
PostgreSQL formats CSV ~40 % slower than binary COPY. The ADBC PostgreSQL driver (Apache Arrow's
`adbc-driver-postgresql`) runs the query as binary COPY and decodes it into Arrow in C++, without holding the
GIL, so the calling thread can parse, checksum and write the previous batch meanwhile. It needs a libpq
connection of its own; to read the same rows as the caller's transaction (its locks, its snapshot), that
transaction exports its snapshot (`pg_export_snapshot()`) and the second connection imports it in a
REPEATABLE READ, READ ONLY transaction (`SET TRANSACTION SNAPSHOT`). The snapshot is valid while the caller's
transaction is open, and the import is refused after it ends: the read never sees anything else.

Works through PgBouncer in transaction pooling mode (the import and the query are one transaction, on one server
connection, of the same server). The second connection uses the caller's connection parameters (password
included), so it goes where the caller's went.
"""

from collections.abc import Generator, Iterator
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import conninfo, sql

try:
    import adbc_driver_postgresql.dbapi as adbc_postgresql
except ImportError:  # pragma: no cover - the driver is pinned; without it callers use COPY as CSV
    adbc_postgresql = None

__all__ = ["SnapshotQuery", "SnapshotQueryUnavailable", "snapshot_query_available"]


class SnapshotQueryUnavailable(Exception):
    """The second connection could not be opened or could not import the snapshot."""


def snapshot_query_available() -> bool:
    """True when the ADBC PostgreSQL driver can be imported (a wheel exists for this platform)."""
    return adbc_postgresql is not None


class SnapshotQuery:
    """The rows of `statement` (a SELECT), as the transaction of `cursor` sees them, as Arrow record batches read
    by ADBC on a connection of its own, opened (and the snapshot imported) on entering; `settings` are set for
    that transaction only (SET LOCAL). `rows` is the count read, once consumed. Raises SnapshotQueryUnavailable
    on entering when the driver or the second connection is not to be had (the caller can read another way)."""

    def __init__(self, cursor: psycopg.Cursor, statement: sql.Composable, *, settings: dict[str, str]) -> None:
        self.cursor = cursor
        self.statement = statement
        self.settings = settings
        self.rows = 0
        self._reader: Any = None

    def _text(self, statement: sql.Composable) -> str:
        return statement.as_string(self.cursor.connection)

    def _exported_snapshot(self) -> str:
        self.cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = self.cursor.fetchone()  # type: ignore[misc]
        return str(snapshot)

    def __enter__(self) -> "SnapshotQuery":
        if adbc_postgresql is None:
            raise SnapshotQueryUnavailable("adbc-driver-postgresql is not installed")
        snapshot = self._exported_snapshot()
        info = self.cursor.connection.info
        target = conninfo.make_conninfo(info.dsn, password=info.password) if info.password else info.dsn
        try:
            self._reader = adbc_postgresql.connect(target, autocommit=True)
        except adbc_postgresql.Error as exc:
            raise SnapshotQueryUnavailable(f"ADBC could not connect: {exc}") from exc
        try:
            with self._reader.cursor() as query:
                query.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                query.execute(self._text(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot))))
                for name, value in self.settings.items():
                    setting = sql.SQL("SET LOCAL {} TO {}").format(sql.Identifier(name), sql.Literal(value))
                    query.execute(self._text(setting))
        except adbc_postgresql.Error as exc:
            self._reader.close()
            raise SnapshotQueryUnavailable(f"The snapshot could not be imported (or a setting set): {exc}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._reader.close()  # ends the read-only transaction: nothing to commit

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self.batches()

    def batches(self) -> Generator[pa.RecordBatch, None, None]:
        with self._reader.cursor() as query:
            query.execute(self._text(self.statement))
            for batch in query.fetch_record_batch():
                self.rows += batch.num_rows
                yield batch
