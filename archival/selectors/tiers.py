"""The storage-tier part of partition health (archival.selectors.health composes the whole of it)."""

from dataclasses import dataclass
from datetime import datetime

from archival.models import RetentionPolicy
from telemetry.choices import StorageTier
from telemetry.selectors.tiers import PartitionStorage, TableStorage, bytes_per_frame_by_tier, storage_by_table

__all__ = ["TableTiers", "TierSummary", "tiers_report"]


@dataclass(frozen=True)
class TierSummary:
    tier: str
    partitions: int
    bytes: int
    rows: int
    bytes_per_row: float | None
    ratio_to_hot: float | None


@dataclass(frozen=True)
class TableTiers:
    table: str
    tiers: list[TierSummary]
    total_bytes: int  # every tier
    size_cap_bytes: int | None
    cold_after_days: int | None
    ingest_bytes_per_day: float | None
    days_until_size_cap: float | None  # at the current ingest rate, before any partition shrinks by going cold
    partitions: list[PartitionStorage]


def _table_tiers(storage: TableStorage, policy: RetentionPolicy | None, *, now: datetime) -> TableTiers:
    cap = policy.size_cap_bytes if policy else None
    rate = storage.ingest_bytes_per_day(now=now)
    total = storage.bytes()
    days = max(0.0, (cap - total) / rate) if cap and rate else None
    return TableTiers(
        table=storage.table,
        tiers=[
            TierSummary(
                tier=tier,
                partitions=sum(p.tier == tier for p in storage.partitions),
                bytes=storage.bytes(tier),
                rows=storage.rows(tier),
                bytes_per_row=storage.bytes_per_row(tier),
                ratio_to_hot=storage.ratio_to_hot(tier),
            )
            for tier in StorageTier.values
        ],
        total_bytes=total,
        size_cap_bytes=cap,
        cold_after_days=policy.cold_after_days if policy else None,
        ingest_bytes_per_day=rate,
        days_until_size_cap=days,
        partitions=storage.partitions,
    )


def tiers_report(
    *, now: datetime, policies: dict[str, RetentionPolicy] | None = None
) -> tuple[list[TableTiers], dict[str, float | None]]:
    """Per table, each tier's size and what a row costs there, and the projected days until the size cap;
    and what a frame (with its detections) costs in each tier. `policies` by table, when the caller has them."""
    if policies is None:
        policies = {p.table: p for p in RetentionPolicy.objects.all()}
    tables = storage_by_table(now=now)
    return [_table_tiers(t, policies.get(t.table), now=now) for t in tables], bytes_per_frame_by_tier(tables)
