"""One timeline over every storage tier: a camera's frames in a time range, and their detections, read the
same whichever of hot, sealed (PostgreSQL partitions) and cold (Parquet files) the range spans: the same
rows in the same order (docs/storage.md).

PostgreSQL answers for every partition still attached (hot and sealed, the DEFAULT partition too); DuckDB
answers for the cold files whose range meets the query's; the two are merged by (timestamp, id). A row is in
exactly one place at any moment: a partition goes cold in the transaction that drops it (archival's tiering).
"""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Model, QuerySet

from telemetry.models import Detection, FrameMetadata, PartitionTier
from telemetry.selectors.cold import cold_partitions, cold_query, naive_utc
from telemetry.services.batches import detection_document

__all__ = [
    "DETECTION_FIELDS",
    "FRAME_FIELDS",
    "ColdFilter",
    "FrameRow",
    "FrameTimeline",
    "aware_utc",
    "cold_row_by_id",
    "cold_row_count",
    "detection_from_row",
    "frame_detections",
    "rows_across_tiers",
]

FRAME_FIELDS = (
    "id",
    "camera_id",
    "timestamp",
    "frame_number",
    "processing_status",
    "processing_time_ms",
    "width",
    "height",
    "quality_score",
    "detection_count",
    "vehicle_count",
    "person_count",
    "bicycle_count",
    "max_confidence",
)
DETECTION_FIELDS = (
    "id",
    "timestamp",
    "object_type",
    "confidence",
    "bbox_x1",
    "bbox_y1",
    "bbox_x2",
    "bbox_y2",
    "track_id",
    "attributes",
)
ONE_MICROSECOND = timedelta(microseconds=1)
# The widest range Python can load (PostgreSQL stores more, see telemetry.admin): an unbounded cold read.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
MAX_LISTED_TIMESTAMPS = 500  # a page's frames are looked up by timestamp; more, by the range they span


@dataclass
class FrameRow:
    id: int
    camera_id: uuid.UUID
    timestamp: datetime
    frame_number: int
    processing_status: str
    processing_time_ms: float | None
    width: int | None
    height: int | None
    quality_score: float | None
    detection_count: int
    vehicle_count: int
    person_count: int
    bicycle_count: int
    max_confidence: float | None
    detections: list[dict[str, Any]] = field(default_factory=list)


def aware_utc(moment: datetime) -> datetime:
    """Cold files give naive UTC timestamps, PostgreSQL aware ones: compare them as aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class ColdFilter:
    """The conditions a cross-tier read asks of the cold files of `table`: the same as its PostgreSQL queryset's
    (since <= timestamp < until, a camera, columns equal to values). Column names come from our code (the model's
    fields), values are passed as parameters."""

    table: str
    since: datetime
    until: datetime
    camera_id: uuid.UUID | None = None
    equals: tuple[tuple[str, Any], ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        """The DuckDB WHERE clause ($1... parameters) and its parameters."""
        conditions = ["timestamp >= $1", "timestamp < $2"]
        parameters: list[Any] = [naive_utc(self.since), naive_utc(self.until)]
        if self.camera_id is not None:
            parameters.append(str(self.camera_id))
            conditions.append(f"camera_id = ${len(parameters)}")
        for name, value in self.equals:
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a column name")
            parameters.append(value)
            conditions.append(f'"{name}" = ${len(parameters)}')
        return " AND ".join(conditions), parameters

    def partitions(self) -> list[PartitionTier]:
        return cold_partitions(table=self.table, since=self.since, until=self.until)


def _cold_converters(model: type[Model], fields: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """How a value read from a cold file becomes what the ORM gives for the same column: uuid and jsonb are
    stored as text, timestamps as UTC without an offset."""

    def converter(name: str) -> Callable[[Any], Any] | None:
        kind = model._meta.get_field(name).get_internal_type()  # type: ignore[union-attr]  # a concrete field
        if kind in ("ForeignKey", "UUIDField"):
            return lambda value: None if value is None else uuid.UUID(str(value))
        if kind == "JSONField":
            return lambda value: json.loads(value) if isinstance(value, str) else value
        if kind == "DateTimeField":
            return lambda value: None if value is None else aware_utc(value)
        return None

    return [converter(name) for name in fields]


def _cold_rows(model: type[Model], fields: Sequence[str], cold: ColdFilter, *, suffix: str = "") -> list[tuple]:
    tiers = cold.partitions()
    if not tiers:
        return []
    where, parameters = cold.where()
    listed = ", ".join(f'"{name}"' for name in fields)
    found = cold_query(tiers, f"SELECT {listed} FROM {{source}} WHERE {where} {suffix}", parameters)  # noqa: S608
    converters = _cold_converters(model, fields)
    return [
        tuple(value if convert is None else convert(value) for convert, value in zip(converters, row, strict=True))
        for row in found
    ]


def rows_across_tiers(
    *, attached: QuerySet, cold: ColdFilter, fields: Sequence[str], descending: bool, limit: int
) -> list[tuple]:
    """The first `limit` rows by (timestamp, id) of `attached` (the PostgreSQL queryset: hot and sealed
    partitions) and of the cold files that `cold` selects (the same conditions), merged: the same rows in the same
    order as if the range had never gone cold. `fields` holds "timestamp" and "id"."""
    if limit <= 0:
        return []
    order = ("-timestamp", "-id") if descending else ("timestamp", "id")
    rows = [tuple(values) for values in attached.order_by(*order).values_list(*fields)[:limit]]
    direction = "DESC" if descending else "ASC"
    found = _cold_rows(
        attached.model, fields, cold, suffix=f"ORDER BY timestamp {direction}, id {direction} LIMIT {int(limit)}"
    )
    if found:
        at, key = fields.index("timestamp"), fields.index("id")
        rows.extend(found)
        rows.sort(key=lambda row: (row[at], row[key]), reverse=descending)
    return rows[:limit]


def cold_row_count(cold: ColdFilter) -> int:
    """How many cold rows `cold` selects (DuckDB over the files of its range; PostgreSQL is not counted)."""
    tiers = cold.partitions()
    if not tiers:
        return 0
    where, parameters = cold.where()
    return int(cold_query(tiers, f"SELECT count(*) FROM {{source}} WHERE {where}", parameters)[0][0])  # noqa: S608


def cold_row_by_id(
    *, model: type[Model], table: str, fields: Sequence[str], id: int, at: datetime | None = None
) -> tuple | None:
    """One cold row of `table` by its id, in the cold file holding `at` when the caller knows the row's timestamp
    (else in every cold file of the table: DuckDB skips row groups by their id statistics)."""
    since, until = (at, at + ONE_MICROSECOND) if at is not None else (EARLIEST, LATEST)
    cold = ColdFilter(table=table, since=since, until=until, equals=(("id", id),))
    found = _cold_rows(model, fields, cold, suffix="LIMIT 1")
    return found[0] if found else None


def detection_from_row(row: tuple) -> tuple[datetime, int, dict[str, Any]]:
    """(timestamp, id, document as sent) of a row of DETECTION_FIELDS from any tier."""
    _id, moment, object_type, confidence, x1, y1, x2, y2, track_id, attributes = row
    if isinstance(attributes, str):
        attributes = json.loads(attributes)
    document = detection_document(
        object_type=object_type,
        confidence=confidence,
        bbox=(x1, y1, x2, y2),
        track_id=track_id,
        attributes=attributes,
    )
    return aware_utc(moment), _id, document


def frame_detections(*, camera_id: uuid.UUID, timestamps: list[datetime]) -> dict[datetime, list[dict[str, Any]]]:
    """The detections of one camera's frames at `timestamps`, each as its sender sent it, in the order sent,
    from whichever tier holds them (the (camera_id, timestamp) index on attached partitions)."""
    if not timestamps:
        return {}
    wanted = {aware_utc(moment) for moment in timestamps}
    low, high = min(wanted), max(wanted)
    found: list[tuple[datetime, int, dict[str, Any]]] = []
    attached = Detection.objects.filter(camera_id=camera_id)
    if len(wanted) <= MAX_LISTED_TIMESTAMPS:
        attached = attached.filter(timestamp__in=sorted(wanted))
    else:  # a long list is one index range scan of the camera's span, filtered here
        attached = attached.filter(timestamp__gte=low, timestamp__lte=high)
    found.extend(row for row in map(detection_from_row, attached.values_list(*DETECTION_FIELDS)) if row[0] in wanted)
    cold = ColdFilter(table="detections", since=low, until=high + ONE_MICROSECOND, camera_id=camera_id)
    cold_rows = _cold_rows(Detection, DETECTION_FIELDS, cold)
    found.extend(detection for detection in map(detection_from_row, cold_rows) if detection[0] in wanted)
    found.sort(key=lambda item: (item[0], item[1]))
    by_frame: dict[datetime, list[dict[str, Any]]] = {moment: [] for moment in wanted}
    for moment, _id, document in found:
        by_frame[moment].append(document)
    return by_frame


class FrameTimeline:
    """One camera's frames with since <= timestamp < until across tiers, in the shape cursor pagination
    needs (order_by on timestamp, filter on a timestamp position, slicing); each slice carries its frames'
    detections. Ordered by (timestamp, id), newest first unless `order_by("timestamp", ...)`."""

    def __init__(
        self,
        *,
        camera_id: uuid.UUID,
        since: datetime,
        until: datetime,
        processing_status: str | None = None,
        descending: bool = True,
    ) -> None:
        self.camera_id = camera_id
        self.since = since
        self.until = until
        self.processing_status = processing_status
        self.descending = descending

    def _copy(self, **changes: Any) -> "FrameTimeline":
        values = {
            "camera_id": self.camera_id,
            "since": self.since,
            "until": self.until,
            "processing_status": self.processing_status,
            "descending": self.descending,
        }
        return FrameTimeline(**{**values, **changes})

    def order_by(self, *fields: str) -> "FrameTimeline":
        if not fields or fields[0].lstrip("-") != "timestamp":
            raise ValueError("Frames are ordered by timestamp (then id)")
        return self._copy(descending=fields[0].startswith("-"))

    def filter(self, **conditions: Any) -> "FrameTimeline":
        timeline = self
        for key, value in conditions.items():
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            if key == "timestamp__lte":
                timeline = timeline._copy(until=min(timeline.until, moment + ONE_MICROSECOND))
            elif key == "timestamp__lt":
                timeline = timeline._copy(until=min(timeline.until, moment))
            elif key == "timestamp__gte":
                timeline = timeline._copy(since=max(timeline.since, moment))
            elif key == "timestamp__gt":
                timeline = timeline._copy(since=max(timeline.since, moment + ONE_MICROSECOND))
            else:
                raise ValueError(f"Frames cannot be filtered on {key}")
        return timeline

    def __getitem__(self, window: slice) -> list[FrameRow]:
        start, stop = window.start or 0, window.stop
        if stop is None:
            raise ValueError("A frame timeline is read a bounded slice at a time")
        rows = self._rows(limit=stop)[start:stop]
        detections = frame_detections(camera_id=self.camera_id, timestamps=[row.timestamp for row in rows])
        for row in rows:
            row.detections = detections.get(row.timestamp, [])
        return rows

    def _rows(self, *, limit: int) -> list[FrameRow]:
        if self.since >= self.until:
            return []
        frames = FrameMetadata.objects.filter(
            camera_id=self.camera_id, timestamp__gte=self.since, timestamp__lt=self.until
        )
        equals: tuple[tuple[str, Any], ...] = ()
        if self.processing_status:
            frames = frames.filter(processing_status=self.processing_status)
            equals = (("processing_status", self.processing_status),)
        cold = ColdFilter(
            table="frame_metadata", since=self.since, until=self.until, camera_id=self.camera_id, equals=equals
        )
        rows = rows_across_tiers(
            attached=frames, cold=cold, fields=FRAME_FIELDS, descending=self.descending, limit=limit
        )
        return [FrameRow(*values) for values in rows]
