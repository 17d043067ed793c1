"""What partitions exist, read from PostgreSQL's catalog (pg_inherits, pg_class.relpartbound)."""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

__all__ = ["PartitionRange", "partition_ranges"]

_BOUND = re.compile(r"FOR VALUES FROM \((?P<start>[^)]*)\) TO \((?P<end>[^)]*)\)")


@dataclass(frozen=True)
class PartitionRange:
    name: str
    start: datetime | None  # None: MINVALUE, or the DEFAULT partition
    end: datetime | None  # None: MAXVALUE, or the DEFAULT partition
    is_default: bool

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if self.is_default:
            return False
        return (self.start is None or self.start < end) and (self.end is None or start < self.end)


def _parse_bound(text: str) -> datetime | None:
    text = text.strip()
    if text.upper() in {"MINVALUE", "MAXVALUE"}:
        return None
    return datetime.fromisoformat(text.strip("'"))


def partition_ranges(table: str) -> list[PartitionRange]:
    """The partitions of `table`, oldest first, the DEFAULT partition last. Bounds are read with the
    session time zone set to UTC for this transaction, so they print with a +00 offset."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('TimeZone', 'UTC', true)")
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
            FROM pg_inherits
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE pg_inherits.inhparent = %s::regclass
            """,
            [table],
        )
        rows = cursor.fetchall()
    ranges = []
    for name, bound in rows:
        match = _BOUND.match(bound)
        if match is None:
            ranges.append(PartitionRange(name=name, start=None, end=None, is_default=True))
        else:
            start, end = _parse_bound(match["start"]), _parse_bound(match["end"])
            ranges.append(PartitionRange(name=name, start=start, end=end, is_default=False))
    return sorted(ranges, key=lambda r: (r.is_default, r.start is not None, r.start.timestamp() if r.start else 0.0))
