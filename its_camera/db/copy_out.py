"""COPY … TO STDOUT read in chunks of whole rows, fast enough to keep up with the server, and parsed into Arrow.

psycopg's `cursor.copy()` hands out one row at a time through its generator machinery, ~3 µs of Python a row:
at a sealed day's millions of rows the client, not PostgreSQL, sets the pace. This reads libpq's copy data
directly (~0.5 µs a row) and joins rows into chunks of at least `chunk_bytes`, so whoever consumes them parses
megabytes at a time. Waiting for the server happens in `select`, without the GIL, so a thread consuming the
chunks runs meanwhile.
"""

import select
from collections.abc import Generator, Iterator

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import errors, pq, sql

__all__ = ["CopyOut", "CsvArrowReader", "arrow_type"]


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


# PostgreSQL column type -> the Arrow type its CSV text is parsed as. uuid and jsonb stay text; timestamptz is parsed
# in a UTC session and kept as UTC without an offset (Parquet's and DuckDB's TIMESTAMP).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "character": pa.string(),
    "uuid": pa.string(),
    "jsonb": pa.string(),
    "timestamp with time zone": pa.timestamp("us"),
}
CSV_BLOCK_BYTES = 2 << 20  # pyarrow's CSV blocks (measured fastest with quoted newlines allowed)


def arrow_type(pg_type: str) -> pa.DataType:
    """The Arrow type of a PostgreSQL column type (as format_type() spells it); ValueError if it has none."""
    base = pg_type.split("(", 1)[0].strip()
    if base not in _ARROW_TYPES:
        raise ValueError(f"Column type {pg_type} has no Arrow mapping")
    return _ARROW_TYPES[base]


class CsvArrowReader:
    """Parses `COPY … TO STDOUT (FORMAT csv)` output of known columns (sent in a UTC session) into Arrow tables, in
    C, a chunk at a time: no Python object per row."""

    def __init__(self, columns: list[tuple[str, str]]) -> None:
        self.names = [name for name, _ in columns]
        self.schema = pa.schema([(name, arrow_type(pg_type)) for name, pg_type in columns])
        parsed_as = {
            field.name: pa.timestamp("us", tz="UTC") if pa.types.is_timestamp(field.type) else field.type
            for field in self.schema
        }
        # One thread: the other core is PostgreSQL's, formatting the next rows.
        self._read = pa_csv.ReadOptions(column_names=self.names, block_size=CSV_BLOCK_BYTES, use_threads=False)
        # Text columns may hold newlines (quoted by COPY); NULL is an unquoted empty field, '' a quoted one.
        self._parse = pa_csv.ParseOptions(newlines_in_values=True)
        self._convert = pa_csv.ConvertOptions(
            column_types=parsed_as,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )

    def parsed(self, chunk: bytes) -> pa.Table:
        table = pa_csv.read_csv(
            pa.py_buffer(chunk), read_options=self._read, parse_options=self._parse, convert_options=self._convert
        )
        return table.cast(self.schema)
