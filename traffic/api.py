"""Traffic API (`/api/v1/traffic/...`): counting lines and regions (CRUD; cameras:read / cameras:write), and the
counts (telemetry:read): crossings, objects, occupancy and dwell, and the 15-minute crossings as FIWARE
TrafficFlowObserved entities. Thin: parse, call a selector or service, shape the answer (docs/traffic.md)."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.responses import Status

from cameras.models import Camera, Zone
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.pagination import CursorPage
from its_camera.choices import ApiScope
from telemetry.models import NIL_SCOPE_ID
from telemetry.selectors.analytics import rollup_watermark
from traffic.choices import Direction, InSide
from traffic.conf import MAX_POLYGON_VERTICES, traffic_setting
from traffic.fiware import traffic_flow_observed
from traffic.models import CountingLine, Region
from traffic.selectors.counts import (
    CountFilters,
    line_counts_json,
    object_counts,
    region_counts,
    region_names,
)
from traffic.selectors.definitions import line_list, region_list
from traffic.services.definitions import (
    line_close,
    line_create,
    line_update,
    region_close,
    region_create,
    region_update,
)

router = Router(tags=["traffic"])

READ = ApiKeyAuth(ApiScope.CAMERAS_READ)
WRITE = ApiKeyAuth(ApiScope.CAMERAS_WRITE)
COUNTS = ApiKeyAuth(ApiScope.TELEMETRY_READ)
MAX_ROWS = 20_000


def _json(body: Any) -> HttpResponse:
    """Count answers are serialised straight to JSON (the fields of the declared schema, checked by the tests):
    ninja's per-attribute validation cost ~40 us a row, most of a week of hours' answer time. The declared
    `response` still documents the shape."""
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_UTC_Z), content_type="application/json")


Coordinate = Annotated[float, Field(ge=0, le=32767)]
ImagePoint = tuple[Coordinate, Coordinate]
Granularity = Literal["15min", "hour", "day"]


class LineIn(Schema):
    camera_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    points: list[ImagePoint] = Field(
        min_length=2, max_length=2, description="[[x1, y1], [x2, y2]] in image pixels (origin top-left, y down)."
    )
    in_side: InSide = Field(description="Which side is 'in', seen on the image walking from point 1 to point 2.")
    valid_from: datetime | None = Field(None, description="Count from this moment (default: now).")


class LinePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    points: list[ImagePoint] | None = Field(None, min_length=2, max_length=2)
    in_side: InSide | None = None
    valid_from: datetime | None = Field(
        None, description="A geometry change applies from this moment (default: now); earlier counts are kept."
    )


class LineVersionOut(Schema):
    valid_from: datetime
    valid_until: datetime | None
    points: list[tuple[float, float]]
    in_side: str
    frame_width: int
    frame_height: int

    @staticmethod
    def resolve_points(obj: Any) -> list[tuple[float, float]]:
        return [(obj.x1, obj.y1), (obj.x2, obj.y2)]


class LineOut(Schema):
    id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    created_at: datetime
    closed_at: datetime | None
    versions: list[LineVersionOut] = Field(description="Oldest first; the last one with valid_until null is in force.")

    @staticmethod
    def resolve_versions(obj: Any) -> list[Any]:
        return list(obj.versions.all())


class RegionIn(Schema):
    camera_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    points: list[ImagePoint] = Field(min_length=3, max_length=MAX_POLYGON_VERTICES)
    valid_from: datetime | None = None


class RegionPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    points: list[ImagePoint] | None = Field(None, min_length=3, max_length=MAX_POLYGON_VERTICES)
    valid_from: datetime | None = None


class RegionVersionOut(Schema):
    valid_from: datetime
    valid_until: datetime | None
    points: list[tuple[float, float]]
    frame_width: int
    frame_height: int


class RegionOut(Schema):
    id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    created_at: datetime
    closed_at: datetime | None
    versions: list[RegionVersionOut]

    @staticmethod
    def resolve_versions(obj: Any) -> list[Any]:
        return list(obj.versions.all())


class DefinitionFilters(Schema):
    camera_id: uuid.UUID | None = None
    include_closed: bool = False


class RangeFilters(Schema):
    since: datetime | None = Field(None, description="Buckets starting at or after this (default: until - 1 day).")
    until: datetime | None = Field(None, description="Buckets starting before this (default: now).")
    granularity: Granularity = "15min"
    camera_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None


class CountFiltersIn(RangeFilters):
    line_id: uuid.UUID | None = None
    object_type: list[Annotated[str, Field(max_length=32)]] | None = Field(None, max_length=20)
    direction: Direction | None = None


class CrossingSeriesOut(Schema):
    line_id: uuid.UUID
    line_name: str
    camera_id: uuid.UUID
    zone_id: uuid.UUID | None = Field(description="The camera's zone when the buckets were counted.")
    direction: str = Field(description="in or out (see the line's in_side).")
    object_type: str
    total: int
    buckets: list[datetime] = Field(description="Bucket starts with crossings, oldest first.")
    crossings: list[int] = Field(description="Crossings in each of `buckets` (same order).")


class CrossingTotalOut(Schema):
    direction: str
    object_type: str
    crossings: int


class CountsOut(Schema):
    since: datetime
    until: datetime
    granularity: str
    complete_until: datetime | None = Field(description="The rollup watermark: later buckets may still grow.")
    series: list[CrossingSeriesOut] = Field(description="One per line, direction and class that has crossings.")
    totals: list[CrossingTotalOut]
    truncated: bool = Field(
        description=f"True when more than {MAX_ROWS} (bucket, line, direction, class) counts matched: the series "
        "hold the oldest ones; narrow the filters."
    )


class ObjectFiltersIn(Schema):
    since: datetime | None = None
    until: datetime | None = None
    granularity: Granularity = "hour"
    camera_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None
    object_type: list[Annotated[str, Field(max_length=32)]] | None = Field(None, max_length=20)


class ObjectRowOut(Schema):
    bucket: datetime
    object_type: str
    objects: int = Field(description="Distinct tracks seen in the bucket (not detections).")


class ObjectsOut(Schema):
    since: datetime
    until: datetime
    granularity: str
    scope: str
    scope_id: uuid.UUID | None
    complete_until: datetime | None
    results: list[ObjectRowOut]


class OccupancyFiltersIn(RangeFilters):
    region_id: uuid.UUID | None = None


class OccupancyRowOut(Schema):
    bucket: datetime
    region_id: uuid.UUID
    region_name: str
    camera_id: uuid.UUID
    object_type: str = Field(description="'' = all classes (the row that carries occupancy).")
    tracks: int
    dwell_p50_seconds: float | None
    dwell_p85_seconds: float | None
    occupancy_max: int | None
    occupancy_mean: float | None


class OccupancyOut(Schema):
    since: datetime
    until: datetime
    granularity: str
    complete_until: datetime | None
    results: list[OccupancyRowOut]
    truncated: bool


# --- helpers -------------------------------------------------------------------------------------------------


def _window(since: datetime | None, until: datetime | None, granularity: str) -> tuple[datetime, datetime]:
    until = until or timezone.now()
    since = since or until - timedelta(days=1)
    if timezone.is_naive(since) or timezone.is_naive(until):
        raise HttpError(422, "since and until must carry a time zone (e.g. 2026-11-25T10:00:00Z).")
    if since >= until:
        raise HttpError(422, "since must be before until.")
    max_days = traffic_setting(f"TRAFFIC_MAX_RANGE_DAYS_{granularity.upper()}")
    if until - since > timedelta(days=max_days):
        raise HttpError(422, f"The range is longer than {max_days} days for granularity {granularity}.")
    return since, until


def _check_scope(camera_id: uuid.UUID | None, zone_id: uuid.UUID | None) -> None:
    if camera_id and zone_id:
        raise HttpError(422, "Give camera_id or zone_id, not both.")
    if camera_id and not Camera.objects.filter(id=camera_id).exists():
        raise HttpError(422, f"camera_id: unknown camera {camera_id}.")
    if zone_id and not Zone.objects.filter(id=zone_id).exists():
        raise HttpError(422, f"zone_id: unknown zone {zone_id}.")


def _complete_until() -> datetime | None:
    watermark = rollup_watermark()
    return watermark.watermark if watermark else None


def _line_or_404(line_id: uuid.UUID) -> CountingLine:
    line = line_list(include_closed=True).filter(id=line_id).first()
    if line is None:
        raise HttpError(404, "Counting line not found.")
    return line


def _region_or_404(region_id: uuid.UUID) -> Region:
    region = region_list(include_closed=True).filter(id=region_id).first()
    if region is None:
        raise HttpError(404, "Region not found.")
    return region


def _camera_for(camera_id: uuid.UUID) -> Camera | None:
    return Camera.objects.filter(id=camera_id).first()


# --- lines ---------------------------------------------------------------------------------------------------


@router.get("/traffic/lines", response=list[LineOut], auth=READ, summary="List counting lines")
@paginate(CursorPage, ordering=("created_at", "id"))
def lines_list(request: HttpRequest, filters: Query[DefinitionFilters]) -> QuerySet[CountingLine]:
    return line_list(camera_id=filters.camera_id, include_closed=filters.include_closed)


@router.post("/traffic/lines", response={201: LineOut}, auth=WRITE, summary="Create a counting line")
def lines_create(request: HttpRequest, payload: LineIn) -> Status[Any]:
    line = line_create(
        camera=_camera_for(payload.camera_id),
        name=payload.name,
        points=[list(p) for p in payload.points],
        in_side=payload.in_side,
        now=timezone.now(),
        valid_from=payload.valid_from,
    )
    return Status(201, _line_or_404(line.id))


@router.get("/traffic/lines/{uuid:line_id}", response=LineOut, auth=READ, summary="Get a counting line")
def lines_get(request: HttpRequest, line_id: uuid.UUID) -> CountingLine:
    return _line_or_404(line_id)


@router.patch(
    "/traffic/lines/{uuid:line_id}",
    response=LineOut,
    auth=WRITE,
    summary="Rename a line or change its geometry from now (or valid_from) onward",
)
def lines_update(request: HttpRequest, line_id: uuid.UUID, payload: LinePatch) -> CountingLine:
    line_update(
        line=_line_or_404(line_id),
        now=timezone.now(),
        name=payload.name,
        points=[list(p) for p in payload.points] if payload.points is not None else None,
        in_side=payload.in_side,
        valid_from=payload.valid_from,
    )
    return _line_or_404(line_id)


@router.delete(
    "/traffic/lines/{uuid:line_id}",
    response={204: None},
    auth=WRITE,
    summary="Close a line: no crossings counted from now on; its counts are kept",
)
def lines_close(request: HttpRequest, line_id: uuid.UUID) -> Status[None]:
    line_close(line=_line_or_404(line_id), now=timezone.now())
    return Status(204, None)


# --- regions -------------------------------------------------------------------------------------------------


@router.get("/traffic/regions", response=list[RegionOut], auth=READ, summary="List regions")
@paginate(CursorPage, ordering=("created_at", "id"))
def regions_list(request: HttpRequest, filters: Query[DefinitionFilters]) -> QuerySet[Region]:
    return region_list(camera_id=filters.camera_id, include_closed=filters.include_closed)


@router.post("/traffic/regions", response={201: RegionOut}, auth=WRITE, summary="Create a region (polygon)")
def regions_create(request: HttpRequest, payload: RegionIn) -> Status[Any]:
    region = region_create(
        camera=_camera_for(payload.camera_id),
        name=payload.name,
        points=[list(p) for p in payload.points],
        now=timezone.now(),
        valid_from=payload.valid_from,
    )
    return Status(201, _region_or_404(region.id))


@router.get("/traffic/regions/{uuid:region_id}", response=RegionOut, auth=READ, summary="Get a region")
def regions_get(request: HttpRequest, region_id: uuid.UUID) -> Region:
    return _region_or_404(region_id)


@router.patch("/traffic/regions/{uuid:region_id}", response=RegionOut, auth=WRITE, summary="Change a region")
def regions_update(request: HttpRequest, region_id: uuid.UUID, payload: RegionPatch) -> Region:
    region_update(
        region=_region_or_404(region_id),
        now=timezone.now(),
        name=payload.name,
        points=[list(p) for p in payload.points] if payload.points is not None else None,
        valid_from=payload.valid_from,
    )
    return _region_or_404(region_id)


@router.delete("/traffic/regions/{uuid:region_id}", response={204: None}, auth=WRITE, summary="Close a region")
def regions_close(request: HttpRequest, region_id: uuid.UUID) -> Status[None]:
    region_close(region=_region_or_404(region_id), now=timezone.now())
    return Status(204, None)


# --- counts --------------------------------------------------------------------------------------------------


@router.get(
    "/traffic/counts",
    response=CountsOut,
    auth=COUNTS,
    summary="Line crossings per bucket, as series by line, direction and class",
    description=(
        "Crossings of counting lines (each track counted once per line and direction) in 15-minute, hour or day "
        "buckets. Filters: camera_id or zone_id, line_id, object_type (repeatable), direction, since/until. "
        "Range limits: 7 days of 15-minute buckets, 31 of hours, 366 of days (TRAFFIC_MAX_RANGE_DAYS_*)."
    ),
)
def counts(request: HttpRequest, filters: Query[CountFiltersIn]) -> HttpResponse:
    since, until = _window(filters.since, filters.until, filters.granularity)
    _check_scope(filters.camera_id, filters.zone_id)
    selected = CountFilters(
        granularity=filters.granularity,
        since=since,
        until=until,
        camera_id=filters.camera_id,
        zone_id=filters.zone_id,
        line_id=filters.line_id,
        object_types=tuple(filters.object_type or ()),
        direction=filters.direction,
    )
    series, totals, rows = line_counts_json(filters=selected, limit=MAX_ROWS + 1)
    truncated = rows > MAX_ROWS
    if truncated:  # rare: answer the oldest MAX_ROWS counts and their totals
        series, totals, rows = line_counts_json(filters=selected, limit=MAX_ROWS)
    return _json(
        {
            "since": since,
            "until": until,
            "granularity": filters.granularity,
            "complete_until": _complete_until(),
            "series": orjson.Fragment(series),
            "totals": orjson.Fragment(totals),
            "truncated": truncated,
        }
    )


@router.get(
    "/traffic/objects",
    response=ObjectsOut,
    auth=COUNTS,
    summary="Objects (distinct tracks) by class, per camera, zone or fleet",
    description=(
        "Distinct tracks by object type per bucket, for one camera, one zone or the fleet. A track is counted in "
        "every bucket it was seen in, so a day is the day's distinct tracks, not the sum of its hours. Detections "
        "without a track id are not objects (see /analytics/detections for detections)."
    ),
)
def objects(request: HttpRequest, filters: Query[ObjectFiltersIn]) -> HttpResponse:
    since, until = _window(filters.since, filters.until, filters.granularity)
    _check_scope(filters.camera_id, filters.zone_id)
    if filters.camera_id:
        scope, scope_id = "camera", filters.camera_id
    elif filters.zone_id:
        scope, scope_id = "zone", filters.zone_id
    else:
        scope, scope_id = "fleet", NIL_SCOPE_ID
    rows = object_counts(
        granularity=filters.granularity, since=since, until=until, scope=scope, scope_id=scope_id,
        object_types=tuple(filters.object_type or ()),
    )  # fmt: skip
    return _json(
        {
            "since": since,
            "until": until,
            "granularity": filters.granularity,
            "scope": scope,
            "scope_id": None if scope == "fleet" else scope_id,
            "complete_until": _complete_until(),
            "results": rows,
        }
    )


@router.get(
    "/traffic/occupancy",
    response=OccupancyOut,
    auth=COUNTS,
    summary="Region occupancy (max and mean distinct tracks per minute) and dwell time (p50/p85 by class)",
)
def occupancy(request: HttpRequest, filters: Query[OccupancyFiltersIn]) -> HttpResponse:
    since, until = _window(filters.since, filters.until, filters.granularity)
    _check_scope(filters.camera_id, filters.zone_id)
    rows = region_counts(
        granularity=filters.granularity, since=since, until=until, camera_id=filters.camera_id,
        zone_id=filters.zone_id, region_id=filters.region_id, limit=MAX_ROWS + 1,
    )  # fmt: skip
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    names = region_names({row["region_id"] for row in rows})
    for row in rows:
        row["region_name"] = names.get(row["region_id"], "")
    return _json(
        {
            "since": since,
            "until": until,
            "granularity": filters.granularity,
            "complete_until": _complete_until(),
            "results": rows,
            "truncated": truncated,
        }
    )


class FiwareFiltersIn(Schema):
    since: datetime | None = None
    until: datetime | None = None
    camera_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None
    line_id: uuid.UUID | None = None


@router.get(
    "/traffic/fiware/TrafficFlowObserved",
    response=list[dict[str, Any]],
    auth=COUNTS,
    summary="15-minute crossings as FIWARE TrafficFlowObserved entities (key-values)",
    description=(
        "One entity per line, 15-minute period, direction and vehicle type, in the smart-data-models "
        "TrafficFlowObserved key-values format: intensity, vehicleType, laneDirection (in = forward, out = "
        "backward), dateObserved (ISO 8601 interval) with dateObservedFrom/dateObservedTo, location (GeoJSON "
        "Point from the camera's longitude/latitude). Non-vehicle classes (person) are left out."
    ),
)
def fiware_traffic_flow(request: HttpRequest, filters: Query[FiwareFiltersIn]) -> list[dict[str, Any]]:
    since, until = _window(filters.since, filters.until, "15min")
    _check_scope(filters.camera_id, filters.zone_id)
    return traffic_flow_observed(
        filters=CountFilters(
            granularity="15min", since=since, until=until, camera_id=filters.camera_id, zone_id=filters.zone_id,
            line_id=filters.line_id,
        ),
        limit=MAX_ROWS,
    )  # fmt: skip
