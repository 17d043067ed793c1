"""Which tables retention can act on, and how each one ages.

Partitioned telemetry tables age by partition (a partition goes when all of its range is older than the
cut-off); plain tables age row by row on a time column, deleted in batches. Open alerts never age out:
only resolved ones do.
"""

from dataclasses import dataclass

from django.db import models


class RetentionTable(models.TextChoices):
    FRAME_METADATA = "frame_metadata", "frame_metadata (frames)"
    DETECTIONS = "detections", "detections"
    SYSTEM_METRICS = "system_metrics", "system_metrics"
    DJANGO_SESSION = "django_session", "django_session (user sessions)"
    ALERTS = "alerts", "alerts (resolved only)"


@dataclass(frozen=True)
class PlainTable:
    """A table aged row by row: rows whose `time_column` is before the cut-off (and match `condition`)."""

    table: str
    key_column: str
    time_column: str
    condition: str = ""  # fixed SQL, never built from input


PARTITIONED_TABLES = frozenset(
    {RetentionTable.FRAME_METADATA, RetentionTable.DETECTIONS, RetentionTable.SYSTEM_METRICS}
)

PLAIN_TABLES = {
    # A session's only time is when it expires: it is kept `keep for` after that.
    RetentionTable.DJANGO_SESSION: PlainTable(
        table="django_session", key_column="session_key", time_column="expire_date"
    ),
    RetentionTable.ALERTS: PlainTable(
        table="alerts", key_column="id", time_column="resolved_at", condition="state = 'resolved'"
    ),
}


def is_partitioned(table: str) -> bool:
    return table in PARTITIONED_TABLES
