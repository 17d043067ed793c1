"""Partitions of the telemetry tables, from one place.

Each partitioned table gets range partitions of the size set in TELEMETRY_PARTITION_SIZES, with
boundaries at 00:00 UTC (the hour for hourly; the 1st of the month, or Monday, for monthly and weekly), from
TELEMETRY_PARTITIONS_BEHIND periods back to TELEMETRY_PARTITIONS_AHEAD periods ahead.

Why not psqlextra's PostgresCurrentTimePartitioningStrategy: it keeps the current hour in the
monthly/weekly start (upstream issues #269, #262, #185) and writes naive bounds that PostgreSQL reads
in the session time zone, so two runs can plan overlapping partitions. Here the start is truncated
in UTC and the bounds carry an explicit +00:00 offset, whatever the session time zone.

`manager` is psqlextra's PostgresPartitioningManager (the PSQLEXTRA_PARTITIONING_MANAGER setting),
so psqlextra's `pgpartition` still works; `manage.py partitions` (telemetry/services/partitions.py)
adds what it lacks: overlap checks and moving DEFAULT-partition rows into a partition being created.
Deleting partitions is never planned here: retention exports and verifies first (archival app).
"""

from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from psqlextra.models import PostgresPartitionedModel
from psqlextra.partitioning import (
    PostgresPartition,
    PostgresPartitioningConfig,
    PostgresPartitioningManager,
    PostgresRangePartition,
    PostgresRangePartitioningStrategy,
)

from telemetry.choices import PartitionSize

__all__ = [
    "PartitionedTable",
    "UtcTimePartition",
    "UtcTimePartitioningStrategy",
    "build_manager",
    "partitioned_tables",
    "period_start",
]


def period_start(moment: datetime, size: str) -> datetime:
    """The start, in UTC, of the period of `size` that holds `moment`."""
    moment = moment.astimezone(UTC)
    if size == PartitionSize.HOURLY:
        return moment.replace(minute=0, second=0, microsecond=0)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if size == PartitionSize.DAILY:
        return midnight
    if size == PartitionSize.WEEKLY:
        return midnight - timedelta(days=midnight.weekday())
    if size == PartitionSize.MONTHLY:
        return midnight.replace(day=1)
    raise ValueError(f"Unknown partition size {size!r}: use one of {', '.join(PartitionSize.values)}")


def period_shift(start: datetime, size: str, periods: int) -> datetime:
    """The start of the period `periods` after (or before, when negative) the one starting at `start`."""
    if size == PartitionSize.MONTHLY:
        years, month_index = divmod(start.month - 1 + periods, 12)
        return start.replace(year=start.year + years, month=month_index + 1)
    steps = {PartitionSize.HOURLY: timedelta(hours=1), PartitionSize.WEEKLY: timedelta(weeks=1)}
    return start + steps.get(PartitionSize(size), timedelta(days=1)) * periods


class UtcTimePartition(PostgresRangePartition):
    """One range partition [start, end) with bounds that carry their UTC offset."""

    def __init__(self, *, start: datetime, size: str) -> None:
        self.size = PartitionSize(size)
        self.start = start.astimezone(UTC)
        self.end = period_shift(self.start, self.size, 1)
        super().__init__(from_values=self.start.isoformat(), to_values=self.end.isoformat())

    def name(self) -> str:
        # p2026112510 (hourly), p20261125 (daily), w20261123 (weekly, from its Monday), p202611 (monthly):
        # names sort in time order and never collide between sizes, so a changed size is seen as an overlap.
        formats = {
            PartitionSize.HOURLY: "p%Y%m%d%H",
            PartitionSize.DAILY: "p%Y%m%d",
            PartitionSize.WEEKLY: "w%Y%m%d",
            PartitionSize.MONTHLY: "p%Y%m",
        }
        return self.start.strftime(formats[self.size])

    def deconstruct(self) -> dict:
        return {**super().deconstruct(), "size": self.size.value}


class UtcTimePartitioningStrategy(PostgresRangePartitioningStrategy):
    def __init__(self, *, size: str, ahead: int, behind: int) -> None:
        self.size = PartitionSize(size)
        self.ahead = ahead
        self.behind = behind

    def partitions_around(self, moment: datetime) -> list[UtcTimePartition]:
        """The partitions that should exist when the time is `moment`, oldest first."""
        current = period_start(moment, self.size)
        return [
            UtcTimePartition(start=period_shift(current, self.size, offset), size=self.size)
            for offset in range(-self.behind, self.ahead + 1)
        ]

    def to_create(self) -> Generator[PostgresPartition, None, None]:
        yield from self.partitions_around(timezone.now())

    def to_delete(self) -> Generator[PostgresPartition, None, None]:
        yield from ()


@dataclass(frozen=True)
class PartitionedTable:
    model: type[PostgresPartitionedModel]
    strategy: UtcTimePartitioningStrategy

    @property
    def table(self) -> str:
        return self.model._meta.db_table


def partitioned_tables() -> list[PartitionedTable]:
    """Every telemetry table with its partitioning strategy, from the current settings."""
    from telemetry.models import Detection, FrameMetadata, SystemMetric

    tables = []
    for model in (FrameMetadata, Detection, SystemMetric):
        size = settings.TELEMETRY_PARTITION_SIZES[model._meta.db_table]
        strategy = UtcTimePartitioningStrategy(
            size=size,
            ahead=settings.TELEMETRY_PARTITIONS_AHEAD[size],
            behind=settings.TELEMETRY_PARTITIONS_BEHIND,
        )
        tables.append(PartitionedTable(model=model, strategy=strategy))
    return tables


def build_manager() -> PostgresPartitioningManager:
    return PostgresPartitioningManager(
        [PostgresPartitioningConfig(model=table.model, strategy=table.strategy) for table in partitioned_tables()]
    )


def __getattr__(name: str) -> PostgresPartitioningManager:
    # `manager` is built on first use, not at import: it needs the app registry and current settings.
    if name == "manager":
        return build_manager()
    raise AttributeError(name)
