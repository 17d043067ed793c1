"""Partition health as operators see it, composed once for `GET /api/v1/partitions` and the admin's partition
health page, so the two agree by construction: each table's partitions from the catalog (coverage ahead, the
DEFAULT partition), its storage tiers (bytes, bytes per row, ratio to hot), its policy's size cap, retention
cut-off and the projected days until the cap, and what a frame costs in each tier."""

from dataclasses import dataclass
from datetime import datetime

from archival.models import RetentionPolicy
from archival.selectors.partitions import TableHealth, tables_health
from archival.selectors.tiers import TableTiers, tiers_report

__all__ = ["PartitionHealthReport", "TableHealthReport", "partition_health_report"]


@dataclass(frozen=True)
class TableHealthReport:
    health: TableHealth
    tiers: TableTiers
    retention_cutoff: datetime | None  # None: no enabled policy

    @property
    def table(self) -> str:
        return self.health.table

    @property
    def partition_count(self) -> int:
        """Partitions of a period: the DEFAULT partition is not one."""
        return sum(not detail.is_default for detail in self.health.partitions)

    @property
    def size_cap_bytes(self) -> int | None:
        return self.tiers.size_cap_bytes

    @property
    def cap_percent(self) -> int | None:
        """PostgreSQL's share of the cap (the bytes of every tier are `tiers.total_bytes`)."""
        cap = self.size_cap_bytes
        return round(self.health.total_bytes / cap * 100) if cap else None

    @property
    def ok(self) -> bool:
        return not self.health.current_missing and not self.health.default_has_rows


@dataclass(frozen=True)
class PartitionHealthReport:
    generated_at: datetime
    tables: list[TableHealthReport]
    bytes_per_frame: dict[str, float | None]  # a frame with its detections, by tier (every table counts)

    @property
    def ok(self) -> bool:
        return all(table.ok for table in self.tables)


def partition_health_report(*, now: datetime, table: str | None = None) -> PartitionHealthReport:
    """Every partitioned table's health at `now` (catalog queries only), or only `table`'s."""
    policies = {policy.table: policy for policy in RetentionPolicy.objects.all()}
    tier_tables, bytes_per_frame = tiers_report(now=now, policies=policies)
    tiers_by_table = {tiers.table: tiers for tiers in tier_tables}
    tables = []
    for health in tables_health(now=now):
        if table is not None and health.table != table:
            continue
        policy = policies.get(health.table)
        tables.append(
            TableHealthReport(
                health=health,
                tiers=tiers_by_table[health.table],
                retention_cutoff=policy.cutoff(now) if policy and policy.enabled else None,
            )
        )
    return PartitionHealthReport(generated_at=now, tables=tables, bytes_per_frame=bytes_per_frame)
