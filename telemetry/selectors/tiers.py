"""How much each storage tier holds, per table and per partition: PostgreSQL's catalog for attached
partitions (hot and sealed), PartitionTier rows for cold files. No scan of any partition's rows."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from its_camera.db.citus import total_relation_size_sql
from telemetry.choices import StorageTier
from telemetry.models import PartitionTier
from telemetry.partitioning import partitioned_tables
from telemetry.selectors.partitions import partition_ranges

__all__ = ["PartitionStorage", "TableStorage", "bytes_per_frame_by_tier", "storage_by_table"]

RATE_WINDOW = timedelta(days=7)  # ingest rate: bytes of the ranges that ended in the last 7 days


@dataclass(frozen=True)
class PartitionStorage:
    table: str
    name: str
    tier: str
    start: datetime | None
    end: datetime | None
    bytes: int
    rows: int | None  # exact for cold files, the planner's estimate otherwise (None: never analyzed)
    hot_bytes: int | None  # its size in PostgreSQL just before it was sealed

    @property
    def bytes_per_row(self) -> float | None:
        return self.bytes / self.rows if self.rows else None

    @property
    def ratio_to_hot(self) -> float | None:
        """Its size now over its size while hot (1.0 for a hot partition)."""
        if self.tier == StorageTier.HOT:
            return 1.0
        return self.bytes / self.hot_bytes if self.hot_bytes else None


@dataclass
class TableStorage:
    table: str
    partitions: list[PartitionStorage] = field(default_factory=list)

    def bytes(self, tier: str | None = None) -> int:
        return sum(p.bytes for p in self.partitions if tier is None or p.tier == tier)

    def rows(self, tier: str) -> int:
        return sum(p.rows or 0 for p in self.partitions if p.tier == tier)

    def bytes_per_row(self, tier: str) -> float | None:
        counted = [p for p in self.partitions if p.tier == tier and p.rows]
        rows = sum(p.rows or 0 for p in counted)
        return sum(p.bytes for p in counted) / rows if rows else None

    def ratio_to_hot(self, tier: str) -> float | None:
        """The tier's bytes per row over the hot tier's (what a row costs there compared with hot)."""
        hot, here = self.bytes_per_row(StorageTier.HOT), self.bytes_per_row(tier)
        return here / hot if hot and here is not None else None

    def ingest_bytes_per_day(self, *, now: datetime) -> float | None:
        """Bytes a day of ingest costs in PostgreSQL, from the ranges that ended in the last RATE_WINDOW
        (their hot size when sealed since)."""
        seconds = 0.0
        size = 0
        for partition in self.partitions:
            if partition.start is None or partition.end is None or not now - RATE_WINDOW <= partition.end <= now:
                continue
            seconds += (partition.end - partition.start).total_seconds()
            cold = partition.tier == StorageTier.COLD
            size += partition.hot_bytes or (0 if cold else partition.bytes)
        return size / (seconds / 86400) if seconds else None


def _attached_sizes(table: str) -> dict[str, tuple[int, int | None]]:
    """Each attached partition's total size (indexes and TOAST included) and the planner's row estimate."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT child.relname, {total_relation_size_sql('child.oid')}, child.reltuples::bigint "  # noqa: S608
            "FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = %s::regclass",
            [table],
        )
        return {name: (int(size), None if rows < 0 else int(rows)) for name, size, rows in cursor.fetchall()}


def storage_by_table(*, now: datetime) -> list[TableStorage]:
    """Every telemetry table's partitions in every tier, oldest first."""
    tiers: dict[str, PartitionTier] = {t.partition: t for t in PartitionTier.objects.all()}
    tables = []
    for table in partitioned_tables():
        storage = TableStorage(table=table.table)
        sizes = _attached_sizes(table.table)
        for detail in partition_ranges(table.table):
            known = tiers.get(detail.name)
            total_bytes, estimated_rows = sizes.get(detail.name, (0, None))
            # An attached partition of a cold range holds late rows waiting to be merged: hot until then.
            tier = known.tier if known is not None and known.tier == StorageTier.SEALED else StorageTier.HOT
            storage.partitions.append(
                PartitionStorage(
                    table=table.table,
                    name=detail.name,
                    tier=tier,
                    start=detail.start,
                    end=detail.end,
                    bytes=total_bytes,
                    rows=estimated_rows,
                    hot_bytes=known.hot_bytes if known is not None and tier == StorageTier.SEALED else None,
                )
            )
        for cold in (t for t in tiers.values() if t.table == table.table and t.tier == StorageTier.COLD):
            storage.partitions.append(
                PartitionStorage(
                    table=table.table,
                    name=cold.partition,
                    tier=StorageTier.COLD,
                    start=cold.range_start,
                    end=cold.range_end,
                    bytes=cold.bytes or 0,
                    rows=cold.rows,
                    hot_bytes=cold.hot_bytes,
                )
            )
        storage.partitions.sort(key=lambda p: (p.start is None, p.start or now, p.tier != StorageTier.COLD))
        tables.append(storage)
    return tables


def bytes_per_frame_by_tier(tables: list[TableStorage]) -> dict[str, float | None]:
    """What a frame costs in each tier: its frame row plus its detection rows, over the frames of that tier."""
    by_name = {t.table: t for t in tables}
    frames, detections = by_name.get("frame_metadata"), by_name.get("detections")
    result: dict[str, float | None] = {}
    for tier in StorageTier.values:
        count = frames.rows(tier) if frames else 0
        size = (frames.bytes(tier) if frames else 0) + (detections.bytes(tier) if detections else 0)
        result[tier] = size / count if count else None
    return result
