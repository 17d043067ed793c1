"""Camera registry API: zones, cameras, heartbeats, realtime status, alerts. Thin: parse, call a
selector or service, shape the answer. Scopes: cameras:read for reads, cameras:write for changes and
heartbeats, alerts:write to acknowledge or resolve alerts."""

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import FloatField, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse
from ninja import Field, Form, Query, Router, Schema, UploadedFile
from ninja import File as ninja_file
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.responses import Status

from cameras.choices import AlertSeverity, AlertState, CameraStatus, ConnectionStatus
from cameras.exceptions import ConflictError
from cameras.models import Alert, Camera, Zone
from cameras.schemas import (
    AlertOut,
    CameraIn,
    CameraOut,
    CameraPageOut,
    CameraPatch,
    CameraStatusPageOut,
    HeartbeatIn,
    HeartbeatOut,
    ZoneIn,
    ZoneOut,
    ZonePatch,
    camera_payload,
    camera_status_payload,
)
from cameras.selectors.alerts import alert_get, alert_list
from cameras.selectors.cameras import (
    BoundingBox,
    CameraFilters,
    GeoPoint,
    camera_get,
    camera_list,
    camera_near_page,
    camera_status_list,
    zone_get,
    zone_list,
)
from cameras.services.alerts import alert_acknowledge, alert_resolve_one
from cameras.services.cameras import camera_create, camera_delete, camera_heartbeat, camera_update
from cameras.services.imports import MAX_IMPORT_BYTES, ImportOutcome, cameras_import, dataset_load, zones_import
from cameras.services.zones import zone_create, zone_delete, zone_update
from its_camera import limits
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.errors import error_response
from its_camera.api.pagination import MAX_CURSOR_LENGTH, CursorPage
from its_camera.choices import ApiScope

router = Router(tags=["cameras"])

MAX_FILTER_JSON_LENGTH = 4096

READ = ApiKeyAuth(ApiScope.CAMERAS_READ)
WRITE = ApiKeyAuth(ApiScope.CAMERAS_WRITE)
ALERTS_WRITE = ApiKeyAuth(ApiScope.ALERTS_WRITE)


@contextmanager
def conflicts_are_409() -> Iterator[None]:
    try:
        yield
    except ConflictError as exc:
        raise HttpError(409, exc.message) from exc


def _caller(request: HttpRequest) -> str:
    return f"api:{request.auth.name}"  # type: ignore[attr-defined]


# --- Zones -----------------------------------------------------------------------------------


def _zone_or_404(zone_id: uuid.UUID) -> Zone:
    zone = zone_get(zone_id=zone_id)
    if zone is None:
        raise HttpError(404, "Zone not found.")
    return zone


@router.get("/zones", response=list[ZoneOut], auth=READ, tags=["zones"], summary="List zones")
@paginate(CursorPage, ordering=("name",))
def zones_list(request: HttpRequest) -> QuerySet[Zone]:
    return zone_list()


@router.post("/zones", response={201: ZoneOut}, auth=WRITE, tags=["zones"], summary="Create a zone")
def zones_create(request: HttpRequest, payload: ZoneIn) -> Status[Zone]:
    with conflicts_are_409():
        zone = zone_create(**payload.dict())
    return Status(201, _zone_or_404(zone.pk))


@router.get("/zones/{uuid:zone_id}", response=ZoneOut, auth=READ, tags=["zones"], summary="Get a zone")
def zones_get(request: HttpRequest, zone_id: uuid.UUID) -> Zone:
    return _zone_or_404(zone_id)


@router.patch("/zones/{uuid:zone_id}", response=ZoneOut, auth=WRITE, tags=["zones"], summary="Change a zone")
def zones_update(request: HttpRequest, zone_id: uuid.UUID, payload: ZonePatch) -> Zone:
    zone = _zone_or_404(zone_id)
    with conflicts_are_409():
        zone_update(zone=zone, data=payload.dict(exclude_unset=True))
    return _zone_or_404(zone_id)


@router.delete("/zones/{uuid:zone_id}", response={204: None}, auth=WRITE, tags=["zones"], summary="Delete a zone")
def zones_delete(request: HttpRequest, zone_id: uuid.UUID) -> Status[None]:
    with conflicts_are_409():
        zone_delete(zone=_zone_or_404(zone_id))
    return Status(204, None)


# --- Cameras ---------------------------------------------------------------------------------


class CameraListQuery(Schema):
    status: list[CameraStatus] = Field(default_factory=list, description="Repeatable: any of these statuses.")
    zone: uuid.UUID | None = Field(None, description="Zone id.")
    is_active: bool | None = None
    tag: list[str] = Field(default_factory=list, description="Repeatable: cameras carrying every one of these tags.")
    config: str | None = Field(
        None,
        max_length=MAX_FILTER_JSON_LENGTH,
        description=(
            'JSON object the camera config must contain, e.g. {"resolution": "1080p"}; shown keys only '
            "(docs/security.md)."
        ),
    )
    bbox: str | None = Field(None, description="minlon,minlat,maxlon,maxlat", examples=["-74.02,40.70,-73.93,40.80"])
    near: str | None = Field(None, description="lat,lon: nearest cameras first", examples=["40.7580,-73.9855"])
    search: str | None = Field(None, max_length=200, description="Part of the camera name, any case.")

    def to_filters(self) -> CameraFilters:
        config: Any = None
        if self.config is not None:
            try:
                config = json.loads(self.config)
                limits.json_check(config, max_depth=settings.CAMERA_CONFIG_MAX_DEPTH, what="config")
            except limits.JsonTooLarge as exc:
                raise ValidationError({"config": [str(exc)]}) from None
            except (ValueError, RecursionError):
                raise ValidationError({"config": ["config must be a JSON object."]}) from None
        return CameraFilters(
            status=[str(status) for status in self.status],
            zone_id=self.zone,
            is_active=self.is_active,
            tags=self.tag,
            config=config,
            bbox=BoundingBox.parse(self.bbox) if self.bbox else None,
            near=GeoPoint.parse(self.near) if self.near else None,
            search=(self.search or "").strip(),
        )


class CameraCursorPage(CursorPage):
    """Cursor pages by name; a `near` list pages by (distance, id) instead, forward only."""

    def paginate_queryset(self, queryset: QuerySet, pagination: Any, request: HttpRequest, **params: Any) -> Any:
        if "distance" not in queryset.query.annotations:
            return super().paginate_queryset(queryset, pagination, request, **params)
        page_size = self._get_page_size(pagination.page_size)
        rows = camera_near_page(queryset, after=_decode_near_cursor(pagination.cursor), limit=page_size)
        results = rows[:page_size]
        next_url = None
        if len(rows) > page_size:
            last = results[-1]
            distance = getattr(last, "distance")  # noqa: B009 - an annotation, unknown to the type checker
            token = base64.urlsafe_b64encode(json.dumps([distance, str(last.pk)]).encode()).decode()
            next_url = _with_query(request.build_absolute_uri(), cursor=token)
        return {"next": next_url, "previous": None, "results": results}


def _decode_near_cursor(cursor: str | None) -> tuple[float, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        distance, camera_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(distance), uuid.UUID(camera_id)
    except (ValueError, TypeError):
        raise HttpError(400, "Invalid cursor.") from None


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    pairs = [(key, value) for key, values in parse_qs(parts.query, keep_blank_values=True).items() for value in values]
    pairs = [(key, value) for key, value in pairs if key not in changes] + list(changes.items())
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _great_circle_km(near: GeoPoint) -> RawSQL:
    # For display only; ordering uses the indexed planar distance.
    return RawSQL(
        "12742 * asin(sqrt(power(sin(radians(%s - cameras.latitude) / 2), 2)"
        " + cos(radians(cameras.latitude)) * cos(radians(%s)) * power(sin(radians(%s - cameras.longitude) / 2), 2)))",
        (near.latitude, near.latitude, near.longitude),
        output_field=FloatField(),
    )


class PageQuery(CursorPage.Input):
    page_size: int | None = Field(None, ge=1, description="Rows per page (default 100, at most 1000).")
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH, description="The `next` link's cursor.")


# The two big list endpoints serialise their pages straight to JSON (payloads in cameras.schemas, the same
# fields as the declared schemas, checked by the tests): ninja's per-attribute validation cost about
# 10 ms per 100-row page, more than the query. The declared `response` still documents the shape.
CAMERA_PAGES = CameraCursorPage(ordering=("name",))
STATUS_PAGES = CursorPage(ordering=("name",))


def _page_response(page: dict[str, Any], payload: Any) -> HttpResponse:
    body = {"next": page["next"], "previous": page["previous"], "results": [payload(row) for row in page["results"]]}
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_UTC_Z), content_type="application/json")


@router.get("/cameras", response=CameraPageOut, auth=READ, summary="List cameras")
def cameras_list(request: HttpRequest, filters: Query[CameraListQuery], page: Query[PageQuery]) -> HttpResponse:
    camera_filters = filters.to_filters()
    queryset = camera_list(filters=camera_filters)
    if camera_filters.near is not None:
        queryset = queryset.annotate(distance_km=_great_circle_km(camera_filters.near))
    return _page_response(CAMERA_PAGES.paginate_queryset(queryset, page, request), camera_payload)


@router.post("/cameras", response={201: CameraOut}, auth=WRITE, summary="Register a camera")
def cameras_create(request: HttpRequest, payload: CameraIn) -> Status[Camera]:
    with conflicts_are_409():
        camera = camera_create(**payload.dict())
    return Status(201, _camera_or_404(camera.pk))


class StatusQuery(Schema):
    zone: uuid.UUID | None = None
    connection_status: ConnectionStatus | None = None
    status: CameraStatus | None = None


@router.get("/cameras/status", response=CameraStatusPageOut, auth=READ, summary="Realtime status of active cameras")
def cameras_status(request: HttpRequest, filters: Query[StatusQuery], page: Query[PageQuery]) -> HttpResponse:
    queryset = camera_status_list(
        zone_id=filters.zone,
        connection_status=filters.connection_status,
        camera_status=filters.status,
    )
    return _page_response(STATUS_PAGES.paginate_queryset(queryset, page, request), camera_status_payload)


def _camera_or_404(camera_id: uuid.UUID) -> Camera:
    camera = camera_get(camera_id=camera_id)
    if camera is None:
        raise HttpError(404, "Camera not found.")
    return camera


@router.get("/cameras/{uuid:camera_id}", response=CameraOut, auth=READ, summary="Get a camera")
def cameras_get(request: HttpRequest, camera_id: uuid.UUID) -> Camera:
    return _camera_or_404(camera_id)


@router.patch("/cameras/{uuid:camera_id}", response=CameraOut, auth=WRITE, summary="Change a camera")
def cameras_update(request: HttpRequest, camera_id: uuid.UUID, payload: CameraPatch) -> Camera:
    camera = _camera_or_404(camera_id)
    with conflicts_are_409():
        camera_update(camera=camera, data=payload.dict(exclude_unset=True))
    return _camera_or_404(camera_id)


@router.delete("/cameras/{uuid:camera_id}", response={204: None}, auth=WRITE, summary="Delete a camera")
def cameras_delete(request: HttpRequest, camera_id: uuid.UUID) -> Status[None]:
    camera_delete(camera=_camera_or_404(camera_id))
    return Status(204, None)


@router.post(
    "/cameras/{uuid:camera_id}/heartbeat", response=HeartbeatOut, auth=WRITE, summary="Report that a camera is alive"
)
def cameras_heartbeat(request: HttpRequest, camera_id: uuid.UUID, payload: HeartbeatIn | None = None) -> HeartbeatOut:
    beat = payload or HeartbeatIn()
    heartbeat = camera_heartbeat(camera_id=camera_id, status=beat.status, fps=beat.fps)
    if heartbeat is None:
        raise HttpError(404, "Camera not found.")
    return HeartbeatOut(id=heartbeat.camera_id, status=beat.status, fps=beat.fps, last_seen_at=heartbeat.seen_at)


# --- Alerts ----------------------------------------------------------------------------------


class AlertListQuery(Schema):
    state: list[AlertState] = Field(default_factory=list, description="Repeatable.")
    kind: list[str] = Field(default_factory=list, description="Repeatable, e.g. camera_offline.")
    severity: list[AlertSeverity] = Field(default_factory=list, description="Repeatable.")
    camera: uuid.UUID | None = None


@router.get("/alerts", response=list[AlertOut], auth=READ, tags=["alerts"], summary="List alerts, newest first")
@paginate(CursorPage, ordering=("-id",))
def alerts_list(request: HttpRequest, filters: Query[AlertListQuery]) -> QuerySet[Alert]:
    return alert_list(
        states=[str(state) for state in filters.state],
        kinds=filters.kind,
        severities=[str(severity) for severity in filters.severity],
        camera_id=filters.camera,
    )


def _alert_or_404(alert_id: int) -> Alert:
    alert = alert_get(alert_id=alert_id)
    if alert is None:
        raise HttpError(404, "Alert not found.")
    return alert


@router.post(
    "/alerts/{int:alert_id}/acknowledge",
    response=AlertOut,
    auth=ALERTS_WRITE,
    tags=["alerts"],
    summary="Acknowledge an open alert",
)
def alerts_acknowledge(request: HttpRequest, alert_id: int) -> Alert:
    with conflicts_are_409():
        alert_acknowledge(alert=_alert_or_404(alert_id), acknowledged_by=_caller(request))
    return _alert_or_404(alert_id)


@router.post(
    "/alerts/{int:alert_id}/resolve", response=AlertOut, auth=ALERTS_WRITE, tags=["alerts"], summary="Resolve an alert"
)
def alerts_resolve(request: HttpRequest, alert_id: int) -> Alert:
    alert_resolve_one(alert=_alert_or_404(alert_id), resolved_by=_caller(request))
    return _alert_or_404(alert_id)


__all__ = ["router"]


# --- Import (CSV / XLSX) -----------------------------------------------------------------------------


class ImportOut(Schema):
    dry_run: bool
    written: bool
    totals: dict[str, int]
    row_errors: list[dict[str, Any]]


def _import(
    request: HttpRequest, importer: Any, file: UploadedFile, file_format: str, dry_run: bool
) -> HttpResponse | ImportOutcome:
    content = file.read(MAX_IMPORT_BYTES + 1)
    outcome = importer(dataset=dataset_load(content=content, file_format=file_format), dry_run=dry_run)
    if outcome.row_errors:
        return error_response(422, {"message": "Nothing was written: fix these rows.", "rows": outcome.row_errors})
    return outcome


@router.post(
    "/cameras/import", response=ImportOut, auth=WRITE, tags=["cameras"], summary="Import cameras from CSV or XLSX"
)
def cameras_import_file(
    request: HttpRequest,
    file: UploadedFile = ninja_file(...),  # noqa: B008 - ninja's parameter declaration
    file_format: Form[str] = "csv",
    dry_run: Form[bool] = True,
) -> Any:
    """Rows matched by name (updated or created). With any bad row nothing is written: 422 with each row's
    errors. `dry_run` (the default) validates and counts without writing."""
    return _import(request, cameras_import, file, file_format, dry_run)


@router.post("/zones/import", response=ImportOut, auth=WRITE, tags=["zones"], summary="Import zones from CSV or XLSX")
def zones_import_file(
    request: HttpRequest,
    file: UploadedFile = ninja_file(...),  # noqa: B008 - ninja's parameter declaration
    file_format: Form[str] = "csv",
    dry_run: Form[bool] = True,
) -> Any:
    """As /cameras/import, for zones (import zones before the cameras that name them)."""
    return _import(request, zones_import, file, file_format, dry_run)
