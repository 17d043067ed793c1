"""Session limits while migrating: a migration that would queue behind a long transaction for an ACCESS
EXCLUSIVE lock fails fast (and is retried by the operator) instead of stalling every query behind it."""

from typing import Any

from django.conf import settings
from django.db import connections


def apply_migration_limits(*, using: str, **kwargs: Any) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{settings.MIGRATION_LOCK_TIMEOUT_MS}ms"])
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false)", [f"{settings.MIGRATION_STATEMENT_TIMEOUT_MS}ms"]
        )


def reset_migration_limits(*, using: str, **kwargs: Any) -> None:
    # Pooled connections outlive the migrate command's use of them: restore the configured limits.
    with connections[using].cursor() as cursor:
        cursor.execute("RESET lock_timeout")
        cursor.execute("RESET statement_timeout")
