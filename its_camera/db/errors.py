"""Telling database errors apart the same way on one PostgreSQL and on Citus."""

import psycopg
from django.db import DatabaseError

__all__ = ["is_unique_violation"]

UNIQUE_VIOLATION_MESSAGE = "duplicate key value violates unique constraint"


def is_unique_violation(exc: BaseException) -> bool:
    """A duplicate key, whichever way it surfaced (Django's error or psycopg's). PostgreSQL reports SQLSTATE
    23505 (Django raises IntegrityError); Citus reports a duplicate met by a COPY into a distributed table as
    SQLSTATE XX000 (Django raises InternalError) with the worker's message, so the message decides there."""
    if isinstance(exc, DatabaseError):
        exc = exc.__cause__  # type: ignore[assignment]
    if not isinstance(exc, psycopg.Error):
        return False
    diag = exc.diag
    state = exc.sqlstate
    if state == "23505":
        return True
    message = getattr(diag, "message_primary", None) or ""
    return state == "XX000" and message.startswith(UNIQUE_VIOLATION_MESSAGE)
