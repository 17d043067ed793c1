"""API input and output shapes of the camera registry."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from django.conf import settings
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from cameras.choices import AlertSeverity, AlertState, CameraStatus, ConnectionStatus
from cameras.credentials import mask_config
from cameras.models import Alert, Camera, RealtimeCameraStatus
from its_camera import limits

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Latitude = Annotated[float, Field(ge=-limits.LATITUDE_MAX, le=limits.LATITUDE_MAX, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-limits.LONGITUDE_MAX, le=limits.LONGITUDE_MAX, allow_inf_nan=False)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Location = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]


def _both_or_neither(first: str, second: str) -> dict[str, Any]:
    """JSON Schema for "give both or neither" of two nullable numbers, so the document says what is refused."""
    rules = []
    for given, other in ((first, second), (second, first)):
        rules.append(
            {
                "if": {"properties": {given: {"type": "number"}}, "required": [given]},
                "then": {"properties": {other: {"type": "number"}}, "required": [other]},
            }
        )
    return {"allOf": rules}


def _config_checked(config: dict[str, Any]) -> dict[str, Any]:
    try:
        limits.json_check(
            config,
            max_depth=settings.CAMERA_CONFIG_MAX_DEPTH,
            max_bytes=settings.CAMERA_CONFIG_MAX_BYTES,
            what="config",
        )
    except limits.JsonTooLarge as exc:
        raise ValueError(str(exc)) from None
    return config


def _refuse_nulls(data: Any, fields: tuple[str, ...]) -> Any:
    """A PATCH leaves out what it does not change; an explicit null for a field that cannot be empty is a 422
    (not a database error later)."""
    if isinstance(data, dict):
        nulls = [field for field in fields if field in data and data[field] is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null: omit a field to leave it unchanged.")
    return data


Config = Annotated[
    dict[str, Any],
    AfterValidator(_config_checked),
    Field(description="Stream URL, resolution, fps, thresholds (size and depth limits: docs/security.md)."),
]


def _position_complete(latitude: float | None, longitude: float | None, *, prefix: str = "") -> None:
    if (latitude is None) != (longitude is None):
        raise ValueError(f"{prefix}latitude and {prefix}longitude go together: give both or neither.")


# --- Zones -----------------------------------------------------------------------------------


class ZoneIn(Schema):
    model_config = ConfigDict(json_schema_extra=_both_or_neither("center_latitude", "center_longitude"))

    name: Name
    description: Description = ""
    min_latitude: Latitude | None = None
    min_longitude: Longitude | None = None
    max_latitude: Latitude | None = None
    max_longitude: Longitude | None = None
    center_latitude: Latitude | None = None
    center_longitude: Longitude | None = None

    @model_validator(mode="after")
    def _ranges(self) -> "ZoneIn":
        _position_complete(self.center_latitude, self.center_longitude, prefix="center_")
        for axis in ("latitude", "longitude"):
            low, high = getattr(self, f"min_{axis}"), getattr(self, f"max_{axis}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{axis} must not be greater than max_{axis}.")
        return self


class ZonePatch(Schema):
    """Only the fields sent change; `name` and `description` cannot be null (omit them to keep them)."""

    name: Name | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None

    _not_null = model_validator(mode="before")(lambda data: _refuse_nulls(data, ("name", "description")))
    min_latitude: Latitude | None = None
    min_longitude: Longitude | None = None
    max_latitude: Latitude | None = None
    max_longitude: Longitude | None = None
    center_latitude: Latitude | None = None
    center_longitude: Longitude | None = None


class ZoneOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    min_latitude: float | None
    min_longitude: float | None
    max_latitude: float | None
    max_longitude: float | None
    center_latitude: float | None
    center_longitude: float | None
    camera_count: int = 0
    created_at: datetime
    updated_at: datetime


# --- Cameras ---------------------------------------------------------------------------------


class CameraIn(Schema):
    model_config = ConfigDict(json_schema_extra=_both_or_neither("latitude", "longitude"))

    name: Name
    status: CameraStatus = CameraStatus.OFFLINE
    is_active: bool = True
    location: Location = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    zone_id: uuid.UUID | None = None
    config: Config = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _position(self) -> "CameraIn":
        _position_complete(self.latitude, self.longitude)
        return self


class CameraPatch(Schema):
    """Only the fields sent change. `config` and `tags` are replaced whole; masked values (`********`)
    sent back in `config` keep the stored secrets while the stream's address is unchanged (docs/security.md).
    Fields that cannot be empty (`name`, `status`, `is_active`, `location`, `config`, `tags`) cannot be null:
    omit them to keep them. `latitude`/`longitude` null clears the position (both together)."""

    name: Name | SkipJsonSchema[None] = None
    status: CameraStatus | SkipJsonSchema[None] = None
    is_active: bool | SkipJsonSchema[None] = None
    location: Location | SkipJsonSchema[None] = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    zone_id: uuid.UUID | None = None
    config: Config | SkipJsonSchema[None] = None
    tags: Annotated[list[Tag], Field(max_length=100)] | SkipJsonSchema[None] = None

    _not_null = model_validator(mode="before")(
        lambda data: _refuse_nulls(data, ("name", "status", "is_active", "location", "config", "tags"))
    )


class CameraOut(Schema):
    id: uuid.UUID
    name: str
    status: CameraStatus
    is_active: bool
    location: str
    latitude: float | None
    longitude: float | None
    zone_id: uuid.UUID | None
    zone_name: str | None = None
    config: dict[str, Any] = Field(description="Credentials masked as ********.")
    tags: list[str]
    last_seen_at: datetime | None
    last_fps: float | None
    created_at: datetime
    updated_at: datetime
    distance_km: float | None = Field(None, description="Great-circle distance to `near`, when given.")

    @staticmethod
    def resolve_config(obj: Camera) -> dict[str, Any]:
        return dict(mask_config(obj.config))

    @staticmethod
    def resolve_zone_name(obj: Camera) -> str | None:
        # Selectors annotate `zone_name`; a plain instance (just created) falls back to its zone.
        if hasattr(obj, "zone_name"):
            return obj.zone_name
        return obj.zone.name if obj.zone_id and obj.zone else None

    @staticmethod
    def resolve_distance_km(obj: Camera) -> float | None:
        distance = getattr(obj, "distance_km", None)
        return round(distance, 4) if distance is not None else None


class CameraPageOut(Schema):
    next: str | None
    previous: str | None
    results: list[CameraOut]


def camera_payload(camera: Camera) -> dict[str, Any]:
    """CameraOut as a plain dict, for the list endpoint's fast path (same fields, same masking)."""
    distance = getattr(camera, "distance_km", None)
    return {
        "id": camera.id,
        "name": camera.name,
        "status": camera.status,
        "is_active": camera.is_active,
        "location": camera.location,
        "latitude": camera.latitude,
        "longitude": camera.longitude,
        "zone_id": camera.zone_id,
        "zone_name": CameraOut.resolve_zone_name(camera),
        "config": mask_config(camera.config),
        "tags": camera.tags,
        "last_seen_at": camera.last_seen_at,
        "last_fps": camera.last_fps,
        "created_at": camera.created_at,
        "updated_at": camera.updated_at,
        "distance_km": round(distance, 4) if distance is not None else None,
    }


class HeartbeatIn(Schema):
    status: CameraStatus = CameraStatus.ONLINE
    fps: Annotated[float, Field(ge=0, le=limits.FPS_MAX, allow_inf_nan=False)] | None = None


class HeartbeatOut(Schema):
    id: uuid.UUID
    status: CameraStatus
    fps: float | None
    last_seen_at: datetime


class CameraStatusOut(Schema):
    id: uuid.UUID
    name: str
    status: CameraStatus
    zone_id: uuid.UUID | None
    zone_name: str | None = None
    location: str
    latitude: float | None
    longitude: float | None
    last_seen_at: datetime | None
    connection_status: ConnectionStatus
    fps_current: float | None

    @staticmethod
    def resolve_zone_name(obj: RealtimeCameraStatus) -> str | None:
        return getattr(obj, "zone_name", None)


class CameraStatusPageOut(Schema):
    next: str | None
    previous: str | None
    results: list[CameraStatusOut]


def camera_status_payload(row: RealtimeCameraStatus) -> dict[str, Any]:
    """CameraStatusOut as a plain dict, for the status endpoint's fast path."""
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "zone_id": row.zone_id,
        "zone_name": getattr(row, "zone_name", None),
        "location": row.location,
        "latitude": row.latitude,
        "longitude": row.longitude,
        "last_seen_at": row.last_seen_at,
        "connection_status": row.connection_status,
        "fps_current": row.fps_current,
    }


# --- Alerts ----------------------------------------------------------------------------------


class AlertOut(Schema):
    id: int
    camera_id: uuid.UUID | None
    camera_name: str | None = None
    kind: str
    subject: str
    severity: AlertSeverity
    state: AlertState
    message: str
    details: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    resolved_at: datetime | None
    resolved_by: str

    @staticmethod
    def resolve_camera_name(obj: Alert) -> str | None:
        return obj.camera.name if obj.camera_id and obj.camera else None
