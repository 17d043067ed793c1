"""COPY … TO STDOUT read in chunks of whole rows, fast enough to keep up with the server.

psycopg's `cursor.copy()` hands out one row at a time through its generator machinery, ~3 µs of Python a row:
at a sealed day's millions of rows the client, not PostgreSQL, sets the pace. This reads libpq's copy data
directly (~0.5 µs a row) and joins rows into chunks of at least `chunk_bytes`, so whoever consumes them parses
megabytes at a time. Waiting for the server happens in `select`, without the GIL, so a thread consuming the
chunks runs meanwhile.
"""

import select
from collections.abc import Generator, Iterator

import psycopg
from psycopg import errors, pq, sql

__all__ = ["CopyOut"]


class CopyOut:
    """The output of a `COPY … TO STDOUT` statement, run in the cursor's transaction, as chunks of whole rows.
    `rows` is the count the server reported, once consumed."""

    def __init__(self, cursor: psycopg.Cursor, statement: sql.Composable, *, chunk_bytes: int) -> None:
        self.cursor = cursor
        self.statement = statement
        self.chunk_bytes = chunk_bytes
        self.rows = 0

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    def chunks(self) -> Generator[bytes, None, None]:
        buffer = bytearray()
        for row in self._copy(self.statement):
            buffer += row
            if len(buffer) >= self.chunk_bytes:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)

    def _copy(self, statement: sql.Composable) -> Iterator[memoryview]:
        connection = self.cursor.connection
        pgconn = connection.pgconn
        pgconn.send_query(statement.as_bytes(connection))
        self._expect(pgconn, pq.ExecStatus.COPY_OUT)
        finished = False
        try:
            while True:
                size, data = pgconn.get_copy_data(1)
                if size > 0:
                    yield data
                elif size == 0:  # nothing buffered: wait for the socket outside the GIL
                    select.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                else:
                    finished = True
                    break
        finally:
            if not finished:  # the consumer gave up: stop the server and drain, so the transaction can roll back
                connection.cancel()
                while pgconn.get_copy_data(0)[0] >= 0:
                    pass
                while pgconn.get_result() is not None:
                    pass
        result = self._expect(pgconn, pq.ExecStatus.COMMAND_OK)
        self.rows += int(result.command_tuples or 0)

    @staticmethod
    def _expect(pgconn: pq.abc.PGconn, status: pq.ExecStatus) -> pq.abc.PGresult:
        result = pgconn.get_result()
        if result is None or result.status != status:
            while pgconn.get_result() is not None:  # leave the connection ready for the next command
                pass
            if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
                raise errors.error_from_result(result, encoding="utf-8")
            answer = pq.ExecStatus(result.status).name if result is not None else "nothing"
            raise psycopg.OperationalError(f"COPY answered {answer}")
        if status == pq.ExecStatus.COMMAND_OK:
            while pgconn.get_result() is not None:
                pass
        return result
