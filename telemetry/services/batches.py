"""Decode and validate ingest batches: bytes in, typed rows out, or a rejection naming the row and field.

msgspec decodes and validates a 2,000-frame batch in C in about the time orjson takes only to parse it
(docs/telemetry.md), and its errors carry the JSON path (`$[3].detections[0].confidence`), which is how
a 422 names the row and the field. Each frame's `detections` array is decoded, typed, into detection rows;
whatever a detection carries beyond the normalized keys (model-specific attributes, a spelling of
`object_type` other than lower case, an explicit `"track_id": null`) is kept as that detection's
`attributes` JSON, so the detection can be returned exactly as it was sent (docs/storage.md).
"""

import json
import math
import operator
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from django.conf import settings
from django.utils import timezone

from its_camera import limits

__all__ = [
    "BatchRejected",
    "DetectionIn",
    "FrameBatch",
    "FrameIn",
    "FrameStatusIn",
    "MetricIn",
    "RowError",
    "detection_attributes",
    "detection_document",
    "frame_statuses_decode",
    "frames_decode",
    "metrics_decode",
]

NDJSON_CONTENT_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})

# Ranges from its_camera.limits (one place for every physical range, docs/security.md).
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
UnitInterval = Annotated[float, msgspec.Meta(ge=0.0, le=limits.CONFIDENCE_MAX)]
ProcessingTime = Annotated[float, msgspec.Meta(ge=0.0, le=limits.PROCESSING_TIME_MS_MAX)]
Coordinate = Annotated[float, msgspec.Meta(ge=limits.BBOX_COORDINATE_MIN, le=limits.BBOX_COORDINATE_MAX)]
Pixels = Annotated[int, msgspec.Meta(ge=1, le=limits.PIXELS_MAX)]
MetricValue = Annotated[float, msgspec.Meta(ge=-limits.METRIC_VALUE_ABS_MAX, le=limits.METRIC_VALUE_ABS_MAX)]
ObjectType = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
MetricName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$")]
Status = Literal["pending", "processing", "completed", "failed"]
AlertLevel = Literal["none", "info", "warning", "critical"]
LabelValue = str | int | float | bool | None


@dataclass(frozen=True)
class RowError:
    row: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


class BatchRejected(Exception):
    """The batch is refused as a whole; nothing was written. `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, errors: list[RowError] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    @property
    def detail(self) -> Any:
        if not self.errors:
            return self.message
        return [error.as_dict() for error in self.errors]


# gc=False: a batch allocates tens of thousands of these; untracked by the cyclic GC they cannot
# trigger the long collections that spoil p99 (they hold no reference cycles).
class DetectionIn(msgspec.Struct, gc=False):
    object_type: ObjectType
    confidence: UnitInterval
    bbox: tuple[Coordinate, Coordinate, Coordinate, Coordinate]
    track_id: Annotated[int, msgspec.Meta(ge=-limits.INT64_MAX, le=limits.INT64_MAX)] | None = None

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.bbox
        if not (x1 < x2 and y1 < y2):
            raise ValueError("bbox: must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2")


class FrameIn(msgspec.Struct, gc=False):
    camera_id: uuid.UUID
    timestamp: AwareDatetime
    frame_number: Annotated[int, msgspec.Meta(ge=0, le=limits.FRAME_NUMBER_MAX)] = 0
    processing_status: Status = "pending"
    processing_time_ms: ProcessingTime | None = None
    width: Pixels | None = None
    height: Pixels | None = None
    quality_score: UnitInterval | None = None
    detections: msgspec.Raw = msgspec.Raw(b"[]")  # the raw JSON array; decoded into DetectionIn by frames_decode


class MetricIn(msgspec.Struct, gc=False):
    timestamp: AwareDatetime
    name: MetricName
    value: MetricValue
    camera_id: uuid.UUID | None = None
    labels: dict[Annotated[str, msgspec.Meta(max_length=64)], LabelValue] = {}
    alert_level: AlertLevel = "none"


class FrameStatusIn(msgspec.Struct, gc=False):
    camera_id: uuid.UUID
    timestamp: AwareDatetime
    processing_status: Status
    processing_time_ms: ProcessingTime | None = None


def frame_document_type() -> type:
    """FrameIn as clients see it, for the OpenAPI document: `detections` is a list of DetectionIn
    (FrameIn keeps it as raw bytes, which has no schema)."""
    fields = [
        (field.name, list[DetectionIn] if field.name == "detections" else field.type, field.default)
        for field in msgspec.structs.fields(FrameIn)
    ]
    return msgspec.defstruct(
        "Frame", [(name, kind, [] if name == "detections" else default) for name, kind, default in fields]
    )


# The keys a detection row stores in its own columns; anything else a sender adds goes to `attributes`.
NORMALIZED_DETECTION_KEYS = frozenset({"object_type", "confidence", "bbox", "track_id"})


class StrictDetectionIn(DetectionIn, forbid_unknown_fields=True):
    """DetectionIn refusing unknown keys: the fast path decodes with it, and only a frame whose detections
    carry more than the normalized keys is decoded a second time, as plain JSON, for its attributes."""


Attributes = bytes | None  # a detection's extra keys as a JSON object, or None when it has none


@dataclass
class FrameBatch:
    frames: list[FrameIn]
    detections: list[list[DetectionIn]]  # detections[i] belong to frames[i]
    # attributes[i] is None when no detection of frames[i] carries extra keys (the usual case), else one
    # entry per detection.
    attributes: list[list[Attributes] | None] | None = None

    @property
    def detection_count(self) -> int:
        return sum(map(len, self.detections))


_frames_decoder = msgspec.json.Decoder(list[FrameIn])
_frame_line_decoder = msgspec.json.Decoder(FrameIn)
_detections_decoder = msgspec.json.Decoder(list[DetectionIn])
_strict_detections_decoder = msgspec.json.Decoder(list[StrictDetectionIn])
_plain_decoder = msgspec.json.Decoder(list[dict[str, Any]])
_encode = msgspec.json.encode
_metrics_decoder = msgspec.json.Decoder(list[MetricIn])
_metric_line_decoder = msgspec.json.Decoder(MetricIn)
_statuses_decoder = msgspec.json.Decoder(list[FrameStatusIn])

_PATH = re.compile(r"^(?P<message>.*) - at `\$(?:\[(?P<row>\d+)\])?\.?(?P<field>[^`]*)`$", re.DOTALL)
_FIELD_PREFIX = re.compile(r"^(?P<field>[a-z_]+): (?P<message>.*)$", re.DOTALL)


def _row_error(exc: msgspec.ValidationError, *, row_offset: int | None = None, field_prefix: str = "") -> RowError:
    """Turn msgspec's `Expected ... - at `$[3].detections[0].confidence`` into (row 3, field, message)."""
    text = str(exc)
    row: int | None = None
    field = ""
    match = _PATH.match(text)
    if match:
        text, field = match["message"], match["field"]
        row = int(match["row"]) if match["row"] is not None else None
    prefixed = _FIELD_PREFIX.match(text)
    if prefixed:  # errors raised in __post_init__ name their field first ("bbox: ...")
        text = prefixed["message"]
        field = f"{field}.{prefixed['field']}" if field else prefixed["field"]
    if row_offset is not None:  # an inner array decoded on its own: its index is part of the field
        if row is not None:
            field = f"[{row}].{field}" if field else f"[{row}]"
        row = row_offset
    if field_prefix:
        field = f"{field_prefix}{field}" if field.startswith("[") else f"{field_prefix}.{field}".rstrip(".")
    return RowError(row=row, field=field, message=text)


def _first_non_finite(value: Any, path: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _malformed(body: bytes, exc: msgspec.DecodeError, *, ndjson: bool) -> BatchRejected:
    """A body that is not JSON is a 400, except for NaN/Infinity (what Python's json.dumps writes for a
    float it cannot represent): that is a bad value, a 422 naming its row and field."""
    try:
        rows = [json.loads(line) for line in body.splitlines() if line.strip()] if ndjson else json.loads(body)
    except ValueError:
        return BatchRejected(400, f"Malformed JSON body: {exc}")
    except RecursionError:
        return _too_deep()
    if isinstance(rows, list):
        for index, row in enumerate(rows):
            try:
                field = _first_non_finite(row)
            except RecursionError:
                return _too_deep()
            if field is not None:
                error = RowError(row=index, field=field, message="Expected a finite number, got NaN or Infinity")
                return BatchRejected(422, "Invalid batch", [error])
    return BatchRejected(400, f"Malformed JSON body: {exc}")


def _too_deep(row: int | None = None, field: str = "") -> BatchRejected:
    depth = settings.API_JSON_MAX_DEPTH
    message = f"JSON nested deeper than {depth} levels."
    return BatchRejected(422, message, [RowError(row, field, message)] if row is not None else None)


def _decode_rows(
    body: bytes, *, ndjson: bool, array_decoder: msgspec.json.Decoder, line_decoder: msgspec.json.Decoder
) -> list:
    try:
        rows: list = line_decoder.decode_lines(body) if ndjson else array_decoder.decode(body)
    except RecursionError:
        # msgspec guards its own recursion: a body nested about a thousand levels deep ends here, not in a 500.
        raise _too_deep() from None
    except msgspec.ValidationError as exc:
        raise BatchRejected(422, "Invalid batch", [_row_error(exc)]) from None
    except msgspec.DecodeError as exc:
        raise _malformed(body, exc, ndjson=ndjson) from None
    if not rows:
        raise BatchRejected(422, "The batch is empty.")
    if len(rows) > settings.TELEMETRY_BATCH_HARD_LIMIT:
        raise BatchRejected(
            413, f"The batch has {len(rows)} rows; the limit is {settings.TELEMETRY_BATCH_HARD_LIMIT} per request."
        )
    return rows


def _outside_window(moment: datetime, window: limits.TimestampWindow) -> bool:
    try:
        return moment not in window
    except OverflowError:  # year 9999 with a negative offset is past year 9999 in UTC
        return True


_timestamp = operator.attrgetter("timestamp")


def _check_timestamps(rows: list, *, now: datetime | None) -> None:
    """Every row's timestamp inside the acceptance window (its_camera.limits.timestamp_window), else 422."""
    window = limits.timestamp_window(now=now or timezone.now())
    try:  # the whole batch at C speed; row by row only to name the first row outside
        timestamps = list(map(_timestamp, rows))
        if window.earliest <= min(timestamps) and max(timestamps) <= window.latest:
            return
    except OverflowError:
        pass
    for index, row in enumerate(rows):
        if _outside_window(row.timestamp, window):
            raise BatchRejected(422, "Invalid batch", [RowError(index, "timestamp", window.describe())])


def _containers(text: bytes) -> int:
    return text.count(b"[") + text.count(b"{")


def _only_typed_containers(body: bytes, detections: list[list[DetectionIn]]) -> bool:
    """Whether the body opens no more brackets than its typed rows need: the batch's array, per frame its
    object and its detections array, per detection its object and its bbox. Then nothing else nests (a
    bracket inside a string only adds to the count), and no frame needs a closer look: one pass of
    `bytes.count` over the body instead of a parse."""
    return _containers(body) <= 1 + sum(2 + 2 * len(decoded) for decoded in detections)


def _detections_too_deep(raw: msgspec.Raw, decoded: list[DetectionIn]) -> bool:
    """Whether a frame's raw detections (stored as they came, unknown keys included) nest deeper than
    API_JSON_MAX_DEPTH. Typed detections hold two containers each (the object and its bbox) inside the
    array: when the raw bytes hold no more brackets than that, nothing else nests and no parse is needed."""
    text = bytes(raw)
    if _containers(text) <= 1 + 2 * len(decoded):
        return False
    max_depth = settings.API_JSON_MAX_DEPTH
    try:
        return limits.json_depth(json.loads(text), stop_after=max_depth) > max_depth
    except RecursionError:
        return True


def is_ndjson(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in NDJSON_CONTENT_TYPES


def frames_decode(body: bytes, *, ndjson: bool = False, now: datetime | None = None) -> FrameBatch:
    """Decode and validate a batch of frames (a JSON array, or NDJSON: one frame per line).

    Raises BatchRejected: 400 malformed JSON, 413 too many frames, 422 an invalid value (row and field
    named: naive timestamp or one outside the acceptance window around `now`, NaN, a number outside its
    physical range, bad bbox, oversize or too deep JSON, duplicate frame).
    """
    frames: list[FrameIn] = _decode_rows(
        body, ndjson=ndjson, array_decoder=_frames_decoder, line_decoder=_frame_line_decoder
    )
    _check_timestamps(frames, now=now)
    max_json = settings.TELEMETRY_MAX_JSON_BYTES
    max_detections = settings.TELEMETRY_MAX_DETECTIONS_PER_FRAME
    detections: list[list[DetectionIn]] = []
    attributes: list[list[Attributes] | None] | None = None
    seen: set[tuple[uuid.UUID, datetime]] = set()
    for index, frame in enumerate(frames):
        raw = frame.detections
        if len(raw) > max_json:
            message = f"The detections JSON is {len(raw)} bytes; the limit is {max_json}."
            raise BatchRejected(422, "Invalid batch", [RowError(index, "detections", message)])
        extras: list[Attributes] | None = None
        decoded: list[DetectionIn]
        try:
            try:
                decoded = _strict_detections_decoder.decode(raw)  # type: ignore[assignment]
            except msgspec.ValidationError:
                # An unknown key, or an invalid value: the lenient decode raises again for the latter.
                decoded = _detections_decoder.decode(raw)
                extras = detection_attributes(raw)
        except msgspec.ValidationError as exc:
            raise BatchRejected(
                422, "Invalid batch", [_row_error(exc, row_offset=index, field_prefix="detections")]
            ) from None
        except RecursionError:
            raise _too_deep(index, "detections") from None
        if extras is None and _needs_attributes(raw, decoded):
            extras = detection_attributes(raw)
        if extras is not None and not any(extras):
            extras = None
        if extras is not None:
            if attributes is None:
                attributes = [None] * index
            attributes.append(extras)
        elif attributes is not None:
            attributes.append(None)
        if len(decoded) > max_detections:
            message = f"{len(decoded)} detections; the limit is {max_detections} per frame."
            raise BatchRejected(422, "Invalid batch", [RowError(index, "detections", message)])
        key = (frame.camera_id, frame.timestamp)
        if key in seen:
            message = "Another frame of this batch has the same camera_id and timestamp."
            raise BatchRejected(422, "Invalid batch", [RowError(index, "timestamp", message)])
        seen.add(key)
        detections.append(decoded)
    if not _only_typed_containers(body, detections):
        for index, frame in enumerate(frames):
            if _detections_too_deep(frame.detections, detections[index]):
                raise _too_deep(index, "detections")
    return FrameBatch(frames=frames, detections=detections, attributes=attributes)


def _needs_attributes(raw: msgspec.Raw, decoded: list[DetectionIn]) -> bool:
    """Whether a detection without unknown keys still holds something the columns do not give back: an
    `object_type` not in lower case (the column holds it lowered) or an explicit `"track_id": null`."""
    untracked = False
    for detection in decoded:
        object_type = detection.object_type
        if not object_type.islower() and object_type != object_type.lower():
            return True
        untracked = untracked or detection.track_id is None
    # An absent track_id and an explicit null decode alike: only then look at the text (a cheap byte search).
    return untracked and b"null" in bytes(raw)


def detection_attributes(raw: bytes | msgspec.Raw) -> list[Attributes]:
    """For each detection of a frame's raw `detections` JSON, what its columns do not hold, as a JSON
    object (or None): keys other than the normalized ones, `object_type` as sent when it is not lower
    case, and `track_id` when it was sent as null. `detection_document` puts them back."""
    result: list[Attributes] = []
    for document in _plain_decoder.decode(raw):
        extra = {key: value for key, value in document.items() if key not in NORMALIZED_DETECTION_KEYS}
        object_type = document.get("object_type")
        if isinstance(object_type, str) and object_type != object_type.lower():
            extra["object_type"] = object_type
        if "track_id" in document and document["track_id"] is None:
            extra["track_id"] = None
        result.append(_encode(extra) if extra else None)
    return result


def detection_document(
    *,
    object_type: str,
    confidence: float,
    bbox: tuple[float, float, float, float],
    track_id: int | None,
    attributes: dict[str, Any] | None,
) -> dict[str, Any]:
    """A detection as its sender sent it, from its columns and its attributes (see detection_attributes)."""
    document: dict[str, Any] = {"object_type": object_type, "confidence": confidence, "bbox": list(bbox)}
    if track_id is not None:
        document["track_id"] = track_id
    if attributes:
        document.update(attributes)
    return document


def metrics_decode(body: bytes, *, ndjson: bool = False, now: datetime | None = None) -> list[MetricIn]:
    """Decode and validate a batch of system metrics (JSON array or NDJSON). Raises BatchRejected."""
    metrics: list[MetricIn] = _decode_rows(
        body, ndjson=ndjson, array_decoder=_metrics_decoder, line_decoder=_metric_line_decoder
    )
    _check_timestamps(metrics, now=now)
    max_json = settings.TELEMETRY_MAX_JSON_BYTES
    for index, metric in enumerate(metrics):
        if metric.labels and len(msgspec.json.encode(metric.labels)) > max_json:
            raise BatchRejected(422, "Invalid batch", [RowError(index, "labels", f"Labels exceed {max_json} bytes.")])
    return metrics


def frame_statuses_decode(body: bytes, *, now: datetime | None = None) -> list[FrameStatusIn]:
    """Decode and validate a batch of processing-status updates (JSON array). Raises BatchRejected."""
    updates: list[FrameStatusIn] = _decode_rows(
        body, ndjson=False, array_decoder=_statuses_decoder, line_decoder=_statuses_decoder
    )
    _check_timestamps(updates, now=now)
    seen: set[tuple[uuid.UUID, datetime]] = set()
    for index, update in enumerate(updates):
        key = (update.camera_id, update.timestamp)
        if key in seen:
            message = "Another update of this batch addresses the same frame."
            raise BatchRejected(422, "Invalid batch", [RowError(index, "timestamp", message)])
        seen.add(key)
    return updates
