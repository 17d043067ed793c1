"""One timeline over every storage tier: a camera's frames in a time range, and their detections, read the
same whichever of hot, sealed (PostgreSQL partitions) and cold (Parquet files) the range spans: the same
rows in the same order (docs/storage.md).

PostgreSQL answers for every partition still attached (hot and sealed, the DEFAULT partition too); DuckDB
answers for the cold files whose range meets the query's; the two are merged by (timestamp, id). A row is in
exactly one place at any moment: a partition goes cold in the transaction that drops it (archival's tiering).
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telemetry.models import Detection, FrameMetadata
from telemetry.selectors.cold import cold_partitions, cold_query, naive_utc
from telemetry.services.batches import detection_document

__all__ = [
    "DETECTION_FIELDS",
    "FRAME_FIELDS",
    "FrameRow",
    "FrameTimeline",
    "aware_utc",
    "detection_from_row",
    "frame_detections",
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
    cold = cold_partitions(table="detections", since=low, until=high + ONE_MICROSECOND)
    if cold:
        rows = cold_query(
            cold,
            f"SELECT {', '.join(DETECTION_FIELDS)} FROM {{source}} "  # noqa: S608 - fixed column names
            "WHERE camera_id = $1 AND timestamp >= $2 AND timestamp <= $3",
            [str(camera_id), naive_utc(low), naive_utc(high)],
        )
        found.extend(detection for detection in map(detection_from_row, rows) if detection[0] in wanted)
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
        if self.since >= self.until or limit <= 0:
            return []
        order = ("-timestamp", "-id") if self.descending else ("timestamp", "id")
        frames = FrameMetadata.objects.filter(
            camera_id=self.camera_id, timestamp__gte=self.since, timestamp__lt=self.until
        )
        if self.processing_status:
            frames = frames.filter(processing_status=self.processing_status)
        rows = [FrameRow(*values) for values in frames.order_by(*order).values_list(*FRAME_FIELDS)[:limit]]
        cold = cold_partitions(table="frame_metadata", since=self.since, until=self.until)
        if cold:
            direction = "DESC" if self.descending else "ASC"
            status = "AND processing_status = $4" if self.processing_status else ""
            parameters: list[Any] = [str(self.camera_id), naive_utc(self.since), naive_utc(self.until)]
            if self.processing_status:
                parameters.append(self.processing_status)
            found = cold_query(
                cold,
                f"SELECT {', '.join(FRAME_FIELDS)} FROM {{source}} "  # noqa: S608 - fixed text
                f"WHERE camera_id = $1 AND timestamp >= $2 AND timestamp < $3 {status} "
                f"ORDER BY timestamp {direction}, id {direction} LIMIT {int(limit)}",
                parameters,
            )
            for values in found:
                row = FrameRow(*values)
                row.camera_id = uuid.UUID(str(row.camera_id))
                row.timestamp = aware_utc(row.timestamp)
                rows.append(row)
            rows.sort(key=lambda row: (row.timestamp, row.id), reverse=self.descending)
        return rows[:limit]
