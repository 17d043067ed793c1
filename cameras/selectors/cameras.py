"""Read cameras, zones and the realtime status. Each filter is written so PostgreSQL can use the seed
index meant for it (see docs/cameras.md and bench/cameras.py, which prints the plans)."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, Count, F, Field, FloatField, Func, Q, QuerySet, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Now

from cameras.choices import ConnectionStatus
from cameras.credentials import config_filter_check
from cameras.models import Camera, RealtimeCameraStatus, Zone
from cameras.models.cameras import camera_point

# The same thresholds as the realtime_camera_status view (migration 0002).
STREAMING_WITHIN = timedelta(seconds=30)
RECENT_WITHIN = timedelta(minutes=5)


def connection_status_at(last_seen_at: datetime | None, *, now: datetime) -> ConnectionStatus:
    """What the realtime view would say for a camera last seen at `last_seen_at`, computed in Python
    (admin lists show it for every row without querying the view per row)."""
    if last_seen_at is not None and last_seen_at > now - STREAMING_WITHIN:
        return ConnectionStatus.STREAMING
    if last_seen_at is not None and last_seen_at > now - RECENT_WITHIN:
        return ConnectionStatus.RECENT
    return ConnectionStatus.STALE


def connection_status_filter(status: str, *, now: datetime | Combinable) -> Q:
    """A filter on `last_seen_at` equivalent to the view's connection_status = `status`. On the base column
    PostgreSQL can estimate it from statistics (and walk the name index for a sorted page); on the view's
    computed column it can only guess. Pass `Now()` for the database's clock, as the view uses."""
    streaming_after = now - STREAMING_WITHIN
    recent_after = now - RECENT_WITHIN
    if status == ConnectionStatus.STREAMING:
        return Q(last_seen_at__gt=streaming_after)
    if status == ConnectionStatus.RECENT:
        return Q(last_seen_at__gt=recent_after, last_seen_at__lte=streaming_after)
    return Q(last_seen_at__isnull=True) | Q(last_seen_at__lte=recent_after)


@dataclass(frozen=True)
class BoundingBox:
    min_longitude: float
    min_latitude: float
    max_longitude: float
    max_latitude: float

    @classmethod
    def parse(cls, text: str) -> "BoundingBox":
        """`minlon,minlat,maxlon,maxlat`, the order of GeoJSON and most map APIs."""
        try:
            min_lon, min_lat, max_lon, max_lat = (float(part) for part in text.split(","))
        except ValueError:
            raise ValidationError({"bbox": ["bbox must be four numbers: minlon,minlat,maxlon,maxlat."]}) from None
        box = cls(min_lon, min_lat, max_lon, max_lat)
        if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            raise ValidationError(
                {
                    "bbox": [
                        "bbox is out of range or inverted: need -180 <= minlon <= maxlon <= 180, same for lat in ±90."
                    ]
                }
            )
        return box


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float

    @classmethod
    def parse(cls, text: str) -> "GeoPoint":
        """`lat,lon`, the order people say coordinates in."""
        try:
            latitude, longitude = (float(part) for part in text.split(","))
        except ValueError:
            raise ValidationError({"near": ["near must be two numbers: lat,lon."]}) from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValidationError({"near": ["near is out of range: lat in ±90, lon in ±180."]})
        return cls(latitude, longitude)


@dataclass(frozen=True)
class CameraFilters:
    status: list[str] = field(default_factory=list)
    zone_id: uuid.UUID | None = None
    is_active: bool | None = None
    tags: list[str] = field(default_factory=list)  # all must match
    config: dict[str, Any] | None = None  # JSONB containment
    bbox: BoundingBox | None = None
    near: GeoPoint | None = None  # orders by distance
    search: str = ""  # name contains, case-insensitive


class GeoPointValue(Func):
    """`point(lon, lat)` from two numbers."""

    function = "point"
    output_field = Field()

    def __init__(self, *, longitude: float, latitude: float) -> None:
        super().__init__(Value(float(longitude)), Value(float(latitude)))


class WithinBox(Func):
    """`point(longitude, latitude) <@ box(point(minlon, minlat), point(maxlon, maxlat))`: containment,
    which the GiST index on the same `point(...)` expression answers."""

    template = "(%(expressions)s)"
    arg_joiner = " <@ "
    output_field = BooleanField()

    def __init__(self, bbox: BoundingBox) -> None:
        box = Func(
            GeoPointValue(longitude=bbox.min_longitude, latitude=bbox.min_latitude),
            GeoPointValue(longitude=bbox.max_longitude, latitude=bbox.max_latitude),
            function="box",
            output_field=Field(),
        )
        super().__init__(camera_point(), box)


class Distance(Func):
    """`point(longitude, latitude) <-> point(lon, lat)`: planar distance in degrees, which the GiST
    index answers nearest-first (KNN) without sorting the table."""

    template = "(%(expressions)s)"
    arg_joiner = " <-> "
    output_field = FloatField()

    def __init__(self, near: GeoPoint) -> None:
        super().__init__(camera_point(), GeoPointValue(longitude=near.longitude, latitude=near.latitude))


class WithinCircle(Func):
    """`point(longitude, latitude) <@ circle(center, radius)`: GiST-indexable, and computed with the same
    point distance as `<->`, so a camera at exactly `radius` is inside."""

    template = "(%(expressions)s)"
    arg_joiner = " <@ "
    output_field = BooleanField()

    def __init__(self, center: Any, radius: float) -> None:
        circle = Func(center, Value(float(radius)), function="circle", output_field=Field())
        super().__init__(camera_point(), circle)


def camera_list(*, filters: CameraFilters) -> QuerySet[Camera]:
    """Cameras matching every given filter. Ordered by name, or nearest first when `near` is given
    (annotated `distance`, in degrees; cameras at exactly the same distance come in index order)."""
    # The zone's name as a column rather than a joined Zone object: half the timestamps to parse per row.
    queryset = Camera.objects.annotate(zone_name=F("zone__name"))
    if filters.status:
        queryset = queryset.filter(status__in=filters.status)
    if filters.zone_id is not None:
        queryset = queryset.filter(zone_id=filters.zone_id)
    if filters.is_active is not None:
        queryset = queryset.filter(is_active=filters.is_active)
    if filters.tags:
        queryset = queryset.filter(tags__contains=sorted(set(filters.tags)))
    if filters.config is not None:
        # Containment on anything a reader cannot see would let a caller guess secrets one query at a time.
        config_filter_check(filters.config)
        queryset = queryset.filter(config__contains=filters.config)
    if filters.bbox is not None:
        queryset = queryset.filter(WithinBox(filters.bbox))
    if filters.search:
        queryset = queryset.filter(name__icontains=filters.search)
    if filters.near is not None:
        # ORDER BY the distance alone: PostgreSQL (15) answers it nearest-first from the GiST index only
        # when it is the whole sort key; a tie-breaker (", id") turns it into a full scan and a sort.
        queryset = queryset.annotate(distance=Distance(filters.near)).filter(latitude__isnull=False)
        return queryset.order_by("distance")
    return queryset.order_by("name")


def camera_near_page(queryset: QuerySet[Camera], *, after: tuple[float, uuid.UUID] | None, limit: int) -> list[Camera]:
    """Up to `limit + 1` cameras of a `near` list (from `camera_list`), nearest first, ties broken by id,
    starting after the (distance, id) of the last camera already seen.

    PostgreSQL can walk the GiST index nearest-first only for `ORDER BY distance` alone, which leaves
    cameras at the same distance (several on one pole) in no stable order. So: one nearest-first index
    walk finds the distance of the (limit + 1)-th camera, then a second query takes every camera
    inside that circle (also the GiST index) and sorts that handful by (distance, id)."""
    distance = queryset.query.annotations["distance"]
    center = distance.get_source_expressions()[1]
    if after is not None:
        queryset = queryset.filter(Q(distance__gt=after[0]) | Q(distance=after[0], pk__gt=after[1]))
    edge = list(queryset.order_by("distance").values_list(F("distance"), flat=True)[limit : limit + 1])
    if edge:
        queryset = queryset.filter(WithinCircle(center, edge[0]))
    return list(queryset.order_by("distance", "pk")[: limit + 1])


def camera_get(*, camera_id: uuid.UUID) -> Camera | None:
    return Camera.objects.annotate(zone_name=F("zone__name")).filter(pk=camera_id).first()


def zone_list() -> QuerySet[Zone]:
    return Zone.objects.annotate(camera_count=Count("cameras")).order_by("name")


def zone_get(*, zone_id: uuid.UUID) -> Zone | None:
    return zone_list().filter(pk=zone_id).first()


def camera_status_list(
    *,
    zone_id: uuid.UUID | None = None,
    connection_status: str | None = None,
    camera_status: str | None = None,
) -> QuerySet[RealtimeCameraStatus]:
    """Rows of the realtime view (active cameras only), ordered by name."""
    queryset = RealtimeCameraStatus.objects.annotate(zone_name=F("zone__name"))
    if zone_id is not None:
        queryset = queryset.filter(zone_id=zone_id)
    if connection_status is not None:
        queryset = queryset.filter(connection_status_filter(connection_status, now=Now()))
    if camera_status is not None:
        queryset = queryset.filter(status=camera_status)
    return queryset.order_by("name")


@dataclass(frozen=True)
class FleetStatusRow:
    zone_id: uuid.UUID | None
    zone_name: str
    streaming: int
    recent: int
    stale: int
    open_alerts: int

    @property
    def total(self) -> int:
        return self.streaming + self.recent + self.stale


def fleet_status_totals() -> dict[str, int]:
    """Active cameras by connection status over the whole fleet: one aggregate over the realtime view."""
    counts = {status: Count("id", filter=Q(connection_status=status)) for status in ConnectionStatus.values}
    totals = RealtimeCameraStatus.objects.aggregate(total=Count("id"), **counts)
    return {key: int(value or 0) for key, value in totals.items()}


def fleet_status_by_zone() -> list[FleetStatusRow]:
    """Per zone (and "no zone"): how many active cameras are streaming / recent / stale, and the
    open camera alerts there. Two grouped queries over the view and the alerts, whatever the fleet size."""
    counts = {status: Count("id", filter=Q(connection_status=status)) for status in ConnectionStatus.values}
    rows = RealtimeCameraStatus.objects.values("zone_id").annotate(**counts).order_by()
    alert_counts = dict(
        Camera.objects.filter(alerts__state__in=["open", "acknowledged"], is_active=True)
        .values("zone_id")
        .annotate(n=Count("alerts"))
        .order_by()
        .values_list("zone_id", "n")
    )
    zone_names = dict(Zone.objects.values_list("id", "name"))
    result = [
        FleetStatusRow(
            zone_id=row["zone_id"],
            zone_name=zone_names.get(row["zone_id"], "(no zone)"),
            streaming=row["streaming"],
            recent=row["recent"],
            stale=row["stale"],
            open_alerts=alert_counts.get(row["zone_id"], 0),
        )
        for row in rows
    ]
    return sorted(result, key=lambda row: (row.zone_id is None, row.zone_name))


MAP_MAX_CAMERAS = 20_000
MAP_MAX_ZONES = 2_000


def map_cameras(*, limit: int = MAP_MAX_CAMERAS) -> list[dict[str, Any]]:
    """Active cameras that have a position, with their connection status (the realtime view), for the map:
    one query, at most `limit` rows (ordered by name, so a cut is stable)."""
    rows: Any = (
        RealtimeCameraStatus.objects.filter(latitude__isnull=False, longitude__isnull=False)
        .order_by("name")
        .values("id", "name", "status", "zone_id", "location", "latitude", "longitude", "connection_status")[:limit]
    )
    return list(rows)


def map_zones(*, limit: int = MAP_MAX_ZONES) -> list[dict[str, Any]]:
    """Zones with a complete bounding box, for the map: one query."""
    rows: Any = (
        Zone.objects.filter(
            min_latitude__isnull=False,
            min_longitude__isnull=False,
            max_latitude__isnull=False,
            max_longitude__isnull=False,
        )
        .order_by("name")
        .values("id", "name", "min_latitude", "min_longitude", "max_latitude", "max_longitude")[:limit]
    )
    return list(rows)
