"""Read-replica routing.

Reads go to the `replica` database only inside `replica_reads()` — analytics selectors and the
read-only admin pages opt in — and only when REPLICA_DATABASE_URL is configured. Everything else,
and every write, uses the primary, so a request always reads what it has just written.

    with replica_reads():
        rows = list(HourlyRollup.objects.filter(...))

    @replica_reads()
    def analytics_hourly(...): ...
"""

from contextlib import ContextDecorator
from contextvars import ContextVar, Token
from typing import Any

from django.conf import settings
from django.db.models import Model

REPLICA = "replica"
_reading_from_replica: ContextVar[bool] = ContextVar("reading_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class replica_reads(ContextDecorator):  # lower case: used like a function, `with replica_reads():`
    def __enter__(self) -> "replica_reads":
        self._token: Token[bool] = _reading_from_replica.set(True)
        return self

    def __exit__(self, *exc: object) -> None:
        _reading_from_replica.reset(self._token)


class ReadReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if _reading_from_replica.get() and replica_configured():
            return REPLICA
        return None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return db != REPLICA  # the replica follows the primary's WAL; never migrate it directly
