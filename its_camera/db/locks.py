"""PostgreSQL advisory locks: two beats, two workers or two operators never run the same job at once."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(name: str, *, using: str = "default") -> Iterator[bool]:
    """Try to take the advisory lock `name` without waiting.

    Yields True when this process holds it (and releases it on exit), False when another one does.

    The lock lives on a session of its own, opened for the block, not on Django's pooled connection: a
    job may return that connection to the pool mid-block (each transaction, each close_old_connections),
    and a session lock left on a pooled connection would stay held by whoever draws it next. If the lock's
    session dies, PostgreSQL releases the lock with it. Jobs connect to PostgreSQL directly, not through
    PgBouncer's transaction pooling (see deploy/pgbouncer.ini).

        with advisory_lock("archival.apply_retention") as acquired:
            if not acquired:
                return "skipped: already running"
            ...
    """
    key = lock_key(name)
    params = connections[using].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as session:
        acquired = bool(session.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0])  # type: ignore[index]
        try:
            yield acquired
        finally:
            if acquired and not session.closed:
                session.execute("SELECT pg_advisory_unlock(%s)", [key])
