"""Storage by table for the admin home: each partitioned table's size, how fast it grows, and how many days
are left before its retention policy's size cap. The catalog only (pg_class sizes, partition bounds), one
query per table: no row is read."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from archival.models import RetentionPolicy
from archival.selectors.partitions import PartitionDetail, partition_details
from telemetry.partitioning import partitioned_tables

__all__ = ["GROWTH_WINDOW", "TableStorage", "growth_bytes_per_day", "storage_by_table"]

# Growth is measured over the partitions that cover the last week: long enough to smooth a day's peak, short
# enough to follow a fleet that grew last month.
GROWTH_WINDOW = timedelta(days=7)
MIN_GROWTH_SPAN = timedelta(hours=1)  # a partition a few minutes old says nothing about a day


@dataclass(frozen=True)
class TableStorage:
    table: str
    total_bytes: int
    partitions: int
    growth_bytes_per_day: float | None
    size_cap_bytes: int | None

    @property
    def cap_percent(self) -> float | None:
        return self.total_bytes / self.size_cap_bytes * 100 if self.size_cap_bytes else None

    @property
    def days_until_cap(self) -> float | None:
        """None: no cap, or no measurable growth. 0: at or over the cap already."""
        if not self.size_cap_bytes:
            return None
        if self.total_bytes >= self.size_cap_bytes:
            return 0.0
        if not self.growth_bytes_per_day:
            return None
        return (self.size_cap_bytes - self.total_bytes) / self.growth_bytes_per_day


def growth_bytes_per_day(details: list[PartitionDetail], *, now: datetime) -> float | None:
    """Bytes a day written into the partitions that overlap the last GROWTH_WINDOW (started by `now`),
    over the time since the oldest of them started. Partitions ahead of now (empty) and DEFAULT are left out."""
    window_start = now - GROWTH_WINDOW
    recent = [
        detail
        for detail in details
        if not detail.is_default
        and detail.start is not None
        and detail.end is not None
        and detail.start <= now
        and detail.end > window_start
    ]
    if not recent:
        return None
    span = now - min(detail.start for detail in recent if detail.start is not None)
    if span < MIN_GROWTH_SPAN:
        return None
    return sum(detail.total_bytes for detail in recent) / (span / timedelta(days=1))


def storage_by_table(*, now: datetime) -> list[TableStorage]:
    """Every partitioned table's size, growth and size cap (from its retention policy, if any)."""
    caps = dict(RetentionPolicy.objects.filter(enabled=True).values_list("table", "size_cap_bytes"))
    rows = []
    for table in partitioned_tables():
        details = partition_details(table.table)
        rows.append(
            TableStorage(
                table=table.table,
                total_bytes=sum(detail.total_bytes for detail in details),
                partitions=sum(1 for detail in details if not detail.is_default),
                growth_bytes_per_day=growth_bytes_per_day(details, now=now),
                size_cap_bytes=caps.get(table.table),
            )
        )
    return rows
