"""Register, change, delete cameras; heartbeats; the admin's bulk actions.

Every write validates first and writes in one transaction, so a rejected request changes nothing.
Stream credentials in `config` are stored as given; a masked placeholder sent back (from the API or
the admin, which only ever show masked configs) is replaced by the stored secret before saving.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Func, Value
from django.utils import timezone

from cameras.choices import CameraStatus
from cameras.credentials import config_restore_masked
from cameras.exceptions import ConflictError
from cameras.models import Camera, Zone
from cameras.status_events import camera_heartbeat_published
from its_camera import limits

CAMERA_FIELDS = ("name", "status", "is_active", "location", "latitude", "longitude", "zone_id", "config", "tags")
NULLABLE_FIELDS = frozenset({"latitude", "longitude", "zone_id"})


def _clean_tags(tags: Iterable[str]) -> list[str]:
    """Stripped, de-duplicated, order kept; tags are matched exactly (case-sensitive) by the list filter."""
    cleaned: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag:
            raise ValidationError({"tags": ["Tags must not be empty."]})
        if len(tag) > 64:
            raise ValidationError({"tags": [f"Tag {tag[:20]!r}… is longer than 64 characters."]})
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def camera_tags_clean(tags: Iterable[str]) -> list[str]:
    """Tags as the services store them (for importers); ValidationError for an empty or too long tag."""
    return _clean_tags(tags)


def _config_check(config: Any) -> None:
    """A config is a JSON object within CAMERA_CONFIG_MAX_DEPTH and CAMERA_CONFIG_MAX_BYTES (its_camera.limits):
    deeper or bigger, every reader of the camera list would pay for it (or fail)."""
    if not isinstance(config, dict):
        raise ValidationError({"config": ["config must be a JSON object."]})
    try:
        limits.json_check(
            config,
            max_depth=settings.CAMERA_CONFIG_MAX_DEPTH,
            max_bytes=settings.CAMERA_CONFIG_MAX_BYTES,
            what="config",
        )
    except limits.JsonTooLarge as exc:
        raise ValidationError({"config": [str(exc)]}) from None


def _camera_validate(camera: Camera) -> None:
    _config_check(camera.config)
    # Field validators (lengths, choices, coordinate ranges) here; the checks below give clearer
    # messages than the database constraints they mirror.
    camera.full_clean(exclude=["zone"], validate_unique=False, validate_constraints=False)
    if (camera.latitude is None) != (camera.longitude is None):
        raise ValidationError({"latitude": ["latitude and longitude go together: give both or neither."]})
    if camera.zone_id is not None and not Zone.objects.filter(pk=camera.zone_id).exists():
        raise ValidationError({"zone_id": [f"Unknown zone {camera.zone_id}."]})
    if Camera.objects.filter(name=camera.name).exclude(pk=camera.pk).exists():
        raise ConflictError(f"A camera named {camera.name!r} already exists.")


def _camera_save(camera: Camera, *, update_fields: list[str] | None = None) -> Camera:
    _camera_validate(camera)
    try:
        with transaction.atomic():
            camera.save(update_fields=update_fields)
    except IntegrityError as exc:
        # The name check above races with a concurrent insert of the same name; the unique index decides.
        if Camera.objects.filter(name=camera.name).exclude(pk=camera.pk).exists():
            raise ConflictError(f"A camera named {camera.name!r} already exists.") from exc
        raise
    return camera


def camera_create(
    *,
    name: str,
    status: CameraStatus | str = CameraStatus.OFFLINE,
    is_active: bool = True,
    location: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    zone_id: uuid.UUID | None = None,
    config: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
) -> Camera:
    """Register a camera. ValidationError for bad values or an unknown zone, ConflictError for a taken name."""
    camera = Camera(
        name=name,
        status=status,
        is_active=is_active,
        location=location,
        latitude=latitude,
        longitude=longitude,
        zone_id=zone_id,
        config={} if config is None else config,
        tags=_clean_tags(tags),
    )
    return _camera_save(camera)


def camera_update(*, camera: Camera, data: dict[str, Any]) -> Camera:
    """Change the given fields (a partial update). `config` and `tags` are replaced as a whole; masked
    placeholders in `config` keep the stored secrets. Nothing is written if any value is invalid."""
    unknown = set(data) - set(CAMERA_FIELDS)
    if unknown:
        raise ValidationError({field: ["Not a camera field."] for field in sorted(unknown)})
    for field, value in data.items():
        if value is None and field not in NULLABLE_FIELDS:
            raise ValidationError({field: ["Cannot be null: omit the field to leave it unchanged."]})
        if field == "config":
            _config_check(value)  # before walking it: bounded depth
            value = config_restore_masked(value, camera.config)
        elif field == "tags":
            value = _clean_tags(value)
        setattr(camera, field, value)
    return _camera_save(camera, update_fields=[*data, "updated_at"] if camera.pk else None)


def camera_delete(*, camera: Camera) -> None:
    """Delete a camera and its alerts. Deactivating (is_active=False) keeps its history instead."""
    camera.delete()


@dataclass(frozen=True)
class Heartbeat:
    camera_id: uuid.UUID
    status: str
    fps: float | None
    seen_at: datetime


def camera_heartbeat(
    *,
    camera_id: uuid.UUID,
    status: CameraStatus | str = CameraStatus.ONLINE,
    fps: float | None = None,
    now: datetime | None = None,
) -> Heartbeat | None:
    """Record that a camera is alive: one UPDATE by primary key (None when there is no such camera).

    It writes only non-indexed columns unless the status changes, so PostgreSQL can update the row
    in place (HOT) without touching the camera indexes. `updated_at` is left alone: it tracks
    registry edits, `last_seen_at` tracks heartbeats. Without an fps the last reported one stays."""
    now = now or timezone.now()
    changes: dict[str, Any] = {"last_seen_at": now, "status": status}
    if fps is not None:
        changes["last_fps"] = fps
    if not Camera.objects.filter(pk=camera_id).update(**changes):
        return None
    camera_heartbeat_published(camera_id=camera_id, status=str(status), seen_at=now)  # live events (docs/live.md)
    return Heartbeat(camera_id=camera_id, status=str(status), fps=fps, seen_at=now)


# --- Bulk actions (admin) --------------------------------------------------------------------------


def _bulk_update(camera_ids: Iterable[uuid.UUID], **changes: Any) -> int:
    return Camera.objects.filter(pk__in=list(camera_ids)).update(**changes, updated_at=timezone.now())


def camera_bulk_set_active(*, camera_ids: Iterable[uuid.UUID], is_active: bool) -> int:
    """Activate or deactivate cameras; returns how many rows changed."""
    return _bulk_update(camera_ids, is_active=is_active)


def camera_bulk_set_status(*, camera_ids: Iterable[uuid.UUID], status: CameraStatus | str) -> int:
    if status not in CameraStatus.values:
        raise ValidationError({"status": [f"Unknown status {status!r}."]})
    return _bulk_update(camera_ids, status=status)


def camera_bulk_move_to_zone(*, camera_ids: Iterable[uuid.UUID], zone: Zone | None) -> int:
    """Put cameras in `zone` (None: no zone)."""
    return _bulk_update(camera_ids, zone=zone)


def camera_bulk_add_tag(*, camera_ids: Iterable[uuid.UUID], tag: str) -> int:
    """Add `tag` to every camera that does not have it yet, in one UPDATE; returns how many gained it."""
    (tag,) = _clean_tags([tag])
    return (
        Camera.objects.filter(pk__in=list(camera_ids))
        .exclude(tags__contains=[tag])
        .update(
            tags=Func(F("tags"), Value(tag), function="array_append"),
            updated_at=timezone.now(),
        )
    )


LAST_SEEN_RESOLUTION = timedelta(seconds=1)

# The first half of the two-int advisory lock key cameras_mark_seen takes per camera (the second is a hash of
# the camera id). Job locks (its_camera.db.locks) use one bigint key: PostgreSQL keeps the two kinds apart.
MARK_SEEN_LOCK_SPACE = 0x17C5EE


def cameras_mark_seen(*, last_seen: dict[uuid.UUID, datetime]) -> int:
    """Move each camera's last_seen_at forward to the given time (never back, never past now), in one
    statement. A camera another ingest transaction is moving forward right now is skipped rather than waited
    for: that batch moves it too, and ingest must never queue on camera rows. A camera seen less than
    LAST_SEEN_RESOLUTION ago is left alone: the status view's thresholds are 30 s and 5 min, and every skipped
    row is a write saved. Returns the number of cameras updated.

    "Skip if busy" is a transaction-scoped advisory lock per camera, tried without waiting, not `FOR NO KEY
    UPDATE … SKIP LOCKED`: Citus refuses row locks on its reference tables (cameras is one, docs/scaling.md),
    while advisory locks are taken on the node running the statement, the coordinator, on both. The threshold
    is computed here, not in SQL: Citus refuses a STABLE function (timestamptz - interval) over columns in an
    UPDATE."""
    if not last_seen:
        return 0
    now = timezone.now()
    ids = sorted(last_seen)
    seen = [min(last_seen[camera_id], now) for camera_id in ids]
    stale_before = [moment - LAST_SEEN_RESOLUTION for moment in seen]
    # Ingest calls this for every batch (telemetry), so it is the one write to cameras that must never wait.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH claimed AS (
                SELECT seen.id, seen.seen, seen.stale_before
                FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[]) AS seen(id, seen, stale_before)
                WHERE pg_try_advisory_xact_lock(%s, hashtext(seen.id::text))
            )
            UPDATE cameras SET last_seen_at = claimed.seen FROM claimed
            WHERE cameras.id = claimed.id
              AND (cameras.last_seen_at IS NULL OR cameras.last_seen_at < claimed.stale_before)
            """,
            [ids, seen, stale_before, MARK_SEEN_LOCK_SPACE],
        )
        return cursor.rowcount
