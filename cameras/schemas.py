"""API input and output shapes of the camera registry."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import StringConstraints, model_validator

from cameras.choices import AlertSeverity, AlertState, CameraStatus, ConnectionStatus
from cameras.credentials import mask_config
from cameras.models import Alert, Camera, RealtimeCameraStatus

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


def _position_complete(latitude: float | None, longitude: float | None, *, prefix: str = "") -> None:
    if (latitude is None) != (longitude is None):
        raise ValueError(f"{prefix}latitude and {prefix}longitude go together: give both or neither.")


# --- Zones -----------------------------------------------------------------------------------


class ZoneIn(Schema):
    name: Name
    description: str = ""
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
    name: Name | None = None
    description: str | None = None
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
    name: Name
    status: CameraStatus = CameraStatus.OFFLINE
    is_active: bool = True
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    zone_id: uuid.UUID | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="Stream URL, resolution, fps, thresholds.")
    tags: list[Tag] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _position(self) -> "CameraIn":
        _position_complete(self.latitude, self.longitude)
        return self


class CameraPatch(Schema):
    """Only the fields sent change. `config` and `tags` are replaced whole; masked values (`********`)
    sent back in `config` keep the stored secrets."""

    name: Name | None = None
    status: CameraStatus | None = None
    is_active: bool | None = None
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    zone_id: uuid.UUID | None = None
    config: dict[str, Any] | None = None
    tags: list[Tag] | None = Field(None, max_length=100)


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
    fps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] | None = None


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
