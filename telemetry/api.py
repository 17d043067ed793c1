"""Telemetry endpoints: batch ingest of frames (with detections) and metrics, status updates, frame reads.

Ingest bodies are read as bytes and decoded by msgspec (telemetry/services/batches.py) rather than by
ninja's pydantic body parsing: it is several times faster on a 2,000-frame batch, and its errors name
the row and the field. The OpenAPI document still shows each body's schema.
"""

import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import paginate

from its_camera import limits
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.errors import error_response
from its_camera.api.pagination import CursorPage
from its_camera.api.throttling import ApiKeyRateThrottle
from its_camera.choices import ApiScope
from telemetry.choices import ProcessingStatus
from telemetry.observability import ingest_batch_record, ingest_rejected_record
from telemetry.selectors.export import (
    ARROW_CONTENT_TYPE,
    frames_export_arrow,
    frames_export_check,
    frames_export_ndjson,
)
from telemetry.selectors.frames import frame_list
from telemetry.services.batches import (
    BatchRejected,
    FrameStatusIn,
    MetricIn,
    frame_document_type,
    frame_statuses_decode,
    frames_decode,
    is_ndjson,
    metrics_decode,
)
from telemetry.services.frames import frames_status_update
from telemetry.services.ingest import (
    FrameIngestResult,
    IdempotencyRequest,
    MetricIngestResult,
    frames_ingest,
    idempotent_response,
    metrics_ingest,
)

router = Router(tags=["telemetry"])

write_auth = ApiKeyAuth(ApiScope.TELEMETRY_WRITE)
ingest_throttle = ApiKeyRateThrottle("ingest", setting="API_INGEST_RATE_LIMIT_PER_SECOND")
read_auth = ApiKeyAuth(ApiScope.TELEMETRY_READ)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def _inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec's JSON schema with its $defs references inlined, as OpenAPI wants it inside an operation."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def _frames_schema() -> dict[str, Any]:
    frame_document: Any = frame_document_type()
    return _inline_schema(msgspec.json.schema(list[frame_document]))


def _body_doc(schema: dict[str, Any], *, ndjson: bool) -> dict[str, Any]:
    """The request body: a JSON array of at least one row and at most TELEMETRY_BATCH_HARD_LIMIT (what is
    refused, said in the schema), or the same rows as NDJSON: each item of the array on its own line."""
    schema = {**schema, "minItems": 1, "maxItems": settings.TELEMETRY_BATCH_HARD_LIMIT}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if ndjson:
        content["application/x-ndjson"] = {
            "schema": {**schema, "description": "The array's items, one JSON object per line (not wrapped in [])."}
        }
    return {"requestBody": {"required": True, "content": content}}


IDEMPOTENCY_DOC = {
    "parameters": [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "Makes a retry safe: the same key and body return the first answer and write nothing.",
        }
    ]
}


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, refused (BatchRejected, 413) past TELEMETRY_MAX_BODY_BYTES. Read from the stream, not
    `request.body`, which stops at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB: about 3,000 frames)."""
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BatchRejected(413, f"Request body too large: the limit is {limit} bytes.")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BatchRejected(413, f"Request body too large: the limit is {limit} bytes.")
    return body


def _idempotency(request: HttpRequest, *, endpoint: str, body: bytes) -> IdempotencyRequest | None:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise HttpError(422, f"{IDEMPOTENCY_HEADER} is longer than 255 characters.")
    return IdempotencyRequest.for_body(api_key_id=request.auth.pk, endpoint=endpoint, key=key, body=body)  # type: ignore[attr-defined]


def _ingest_response(body: dict[str, Any], *, replayed: bool) -> HttpResponse:
    response = HttpResponse(msgspec.json.encode(body), status=201, content_type="application/json")
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


class FrameIngestOut(Schema):
    frames: int
    detections: int
    cameras: int


class MetricIngestOut(Schema):
    metrics: int = Field(description="Rows written.")
    cameras: int
    duplicates: int = Field(
        0,
        description="Rows skipped because the same sample (camera, name, timestamp, labels) is already stored: "
        "a retried batch writes nothing and is answered 201.",
    )


class FrameStatusOut(Schema):
    updated: int
    missing: list[int] = Field(description="Indexes of the updates that matched no stored frame.")
    cold: list[int] = Field(
        description="Indexes of the updates addressing a frame in a cold (read-only) partition: not changed; "
        "`manage.py archive restore --cold` brings the partition back."
    )


class FrameOut(Schema):
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
    detections: list[dict[str, Any]] = Field(
        description="The frame's detections as the sender sent them (extra keys included), in the order sent."
    )


class FrameFilters(Schema):
    camera_id: uuid.UUID
    since: datetime | None = Field(None, description="Inclusive; default: `until` minus 24 hours.")
    until: datetime | None = Field(None, description="Exclusive; default: now.")
    processing_status: ProcessingStatus | None = None


@router.post(
    "/frames",
    auth=write_auth,
    throttle=ingest_throttle,
    response={201: FrameIngestOut},
    summary="Push a batch of frames, each with its detections",
    description=(
        f"A JSON array (or NDJSON, `Content-Type: application/x-ndjson`) of frames, up to "
        f"`BULK_INSERT_BATCH_SIZE` ({settings.BULK_INSERT_BATCH_SIZE}) per request; 413 past "
        f"{settings.TELEMETRY_BATCH_HARD_LIMIT} frames or {settings.TELEMETRY_MAX_BODY_BYTES} bytes. The batch is "
        "written atomically with COPY: one invalid row rejects it with 422 naming the row and the field, and "
        "nothing is written. Timestamps must carry a time zone and fall in the acceptance window (the last "
        f"{settings.TELEMETRY_ACCEPT_PAST_DAYS} days to {settings.TELEMETRY_ACCEPT_FUTURE_MINUTES} minutes ahead); "
        "every number has a physical range (docs/security.md)."
    ),
    openapi_extra={**_body_doc(_frames_schema(), ndjson=True), **IDEMPOTENCY_DOC},
)
def frames_create(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    try:
        body = _read_body(request)
        idempotency = _idempotency(request, endpoint="frames", body=body)
        if idempotency is not None and (first := idempotent_response(request=idempotency)) is not None:
            return _ingest_response(FrameIngestResult(**first).as_response(), replayed=True)
        batch = frames_decode(body, ndjson=is_ndjson(request.content_type or ""))
        result = frames_ingest(batch=batch, idempotency=idempotency)
    except BatchRejected as rejected:
        ingest_rejected_record(endpoint="frames", status=rejected.status)
        return error_response(rejected.status, rejected.detail)
    if not result.replayed:
        rows = {"frame_metadata": result.frames, "detections": result.detections}
        ingest_batch_record(endpoint="frames", rows=rows, seconds=time.perf_counter() - started)
    return _ingest_response(result.as_response(), replayed=result.replayed)


@router.post(
    "/metrics",
    auth=write_auth,
    throttle=ingest_throttle,
    response={201: MetricIngestOut},
    summary="Push a batch of system metrics",
    description=(
        "A JSON array (or NDJSON) of metrics (fps, gpu_utilization, ...), written atomically with COPY. "
        "`camera_id` is optional (host metrics). Same limits and errors as `POST /frames`. A sample is identified "
        "by (camera_id, name, timestamp, labels): retrying a batch, with or without an `Idempotency-Key`, never "
        "stores a sample twice; samples already stored are counted in `duplicates` and the first value stays."
    ),
    openapi_extra={**_body_doc(_inline_schema(msgspec.json.schema(list[MetricIn])), ndjson=True), **IDEMPOTENCY_DOC},
)
def metrics_create(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    try:
        body = _read_body(request)
        idempotency = _idempotency(request, endpoint="metrics", body=body)
        if idempotency is not None and (first := idempotent_response(request=idempotency)) is not None:
            return _ingest_response(MetricIngestResult(**first).as_response(), replayed=True)
        metrics = metrics_decode(body, ndjson=is_ndjson(request.content_type or ""))
        result = metrics_ingest(metrics=metrics, idempotency=idempotency)
    except BatchRejected as rejected:
        ingest_rejected_record(endpoint="metrics", status=rejected.status)
        return error_response(rejected.status, rejected.detail)
    if not result.replayed:
        ingest_batch_record(
            endpoint="metrics", rows={"system_metrics": result.metrics}, seconds=time.perf_counter() - started
        )
    return _ingest_response(result.as_response(), replayed=result.replayed)


@router.patch(
    "/frames/status",
    auth=write_auth,
    throttle=ingest_throttle,
    response={200: FrameStatusOut},
    summary="Update the processing status of frames",
    description=(
        "A JSON array of `{camera_id, timestamp, processing_status, processing_time_ms?}`; each addresses the "
        "frame with that camera and timestamp. All or nothing; `missing` lists the updates that found no frame."
    ),
    openapi_extra=_body_doc(_inline_schema(msgspec.json.schema(list[FrameStatusIn])), ndjson=False),
)
def frames_status(request: HttpRequest) -> HttpResponse:
    try:
        updates = frame_statuses_decode(_read_body(request))
    except BatchRejected as rejected:
        return error_response(rejected.status, rejected.detail)
    result = frames_status_update(updates=updates)
    return HttpResponse(
        msgspec.json.encode({"updated": result.updated, "missing": result.missing, "cold": result.cold}),
        content_type="application/json",
    )


@router.get(
    "/frames",
    auth=read_auth,
    response=list[FrameOut],
    summary="Frames of one camera in a time range, newest first",
    description=(
        "Answers the same rows in the same order whichever storage tiers (hot, sealed, cold) the range spans; "
        "503 when a cold file the range needs cannot be read (its partitions are named)."
    ),
)
@paginate(CursorPage, ordering=("-timestamp", "-id"))
def frames_list(request: HttpRequest, filters: Query[FrameFilters]) -> Any:
    for name, moment in (("since", filters.since), ("until", filters.until)):
        if (problem := limits.read_timestamp_check(moment, name=name)) is not None:
            raise HttpError(422, problem)
    until = filters.until or timezone.now()
    since = filters.since or until - timedelta(hours=24)
    if since >= until:
        raise HttpError(422, "since must be before until.")
    status = filters.processing_status.value if filters.processing_status else None
    return frame_list(camera_id=filters.camera_id, since=since, until=until, processing_status=status)


class FrameExportFilters(Schema):
    camera_id: uuid.UUID
    since: datetime = Field(description="Inclusive.")
    until: datetime = Field(description="Exclusive; at most TELEMETRY_EXPORT_MAX_HOURS (24) after `since`.")
    format: Literal["ndjson", "arrow"] = Field(
        "ndjson",
        description=(
            "`ndjson`: one FrameOut document a line. `arrow`: an Arrow IPC stream (`" + ARROW_CONTENT_TYPE + "`), "
            "a record batch an hour, each frame's detections nested in a list column (object_type, confidence, "
            "bbox, track_id, attributes: the JSON text of the keys the sender added, or null)."
        ),
    )


@router.get(
    "/frames/export",
    auth=read_auth,
    summary="Every frame of one camera in a time range, with its detections, as NDJSON or Arrow",
    description=(
        "The bulk read an integration downloads (a camera-hour for an audit or a training set), where `GET /frames` "
        "pages 100 frames at a time: one frame a line, the same document as `GET /frames` gives, oldest first "
        "(timestamp, id), streamed an hour at a time; or (`format=arrow`) the same frames as an Arrow IPC stream "
        "for loading into pandas or DuckDB. The same rows whichever storage tiers the range spans; 503 when a cold "
        "file the range needs is missing (its partitions are named), 422 for a bad range or format."
    ),
    response={200: None},
    openapi_extra={
        "responses": {
            200: {
                "description": "One FrameOut document a line (ndjson) or an Arrow IPC stream (arrow).",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    ARROW_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    },
)
def frames_export(request: HttpRequest, filters: Query[FrameExportFilters]) -> StreamingHttpResponse:
    for name, moment in (("since", filters.since), ("until", filters.until)):
        if (problem := limits.read_timestamp_check(moment, name=name)) is not None:
            raise HttpError(422, problem)
    if filters.since >= filters.until:
        raise HttpError(422, "since must be before until.")
    if filters.until - filters.since > timedelta(hours=settings.TELEMETRY_EXPORT_MAX_HOURS):
        raise HttpError(422, f"An export spans at most {settings.TELEMETRY_EXPORT_MAX_HOURS} hours.")
    frames_export_check(since=filters.since, until=filters.until)  # a missing cold file: 503 before streaming
    if filters.format == "arrow":
        stream = frames_export_arrow(camera_id=filters.camera_id, since=filters.since, until=filters.until)
        return StreamingHttpResponse(stream, content_type=ARROW_CONTENT_TYPE)
    rows = frames_export_ndjson(camera_id=filters.camera_id, since=filters.since, until=filters.until)
    return StreamingHttpResponse(rows, content_type="application/x-ndjson")
