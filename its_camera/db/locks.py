"""PostgreSQL advisory locks: two beats, two workers or two operators never run the same job at once."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(name: str, *, using: str = "default") -> Iterator[bool]:
    """Try to take the session-level advisory lock `name` without waiting.

    Yields True when this session holds it (and releases it on exit), False when another session
    does. The lock lives on the connection, so the connection is kept for the whole block.

        with advisory_lock("archival.apply_retention") as acquired:
            if not acquired:
                return "skipped: already running"
            ...
    """
    key = lock_key(name)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
