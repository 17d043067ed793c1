"""Create, change and delete zones."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cameras.exceptions import ConflictError
from cameras.models import Zone

ZONE_FIELDS = (
    "name",
    "description",
    "min_latitude",
    "min_longitude",
    "max_latitude",
    "max_longitude",
    "center_latitude",
    "center_longitude",
)


def _zone_validate(zone: Zone) -> None:
    zone.full_clean(validate_unique=False, validate_constraints=False)
    errors: dict[str, list[str]] = {}
    for axis in ("latitude", "longitude"):
        low, high = getattr(zone, f"min_{axis}"), getattr(zone, f"max_{axis}")
        if low is not None and high is not None and low > high:
            errors[f"min_{axis}"] = [f"min_{axis} must not be greater than max_{axis}."]
    if (zone.center_latitude is None) != (zone.center_longitude is None):
        errors["center_latitude"] = ["center_latitude and center_longitude go together: give both or neither."]
    if errors:
        raise ValidationError(errors)
    if Zone.objects.filter(name=zone.name).exclude(pk=zone.pk).exists():
        raise ConflictError(f"A zone named {zone.name!r} already exists.")


def _zone_save(zone: Zone) -> Zone:
    _zone_validate(zone)
    try:
        with transaction.atomic():
            zone.save()
    except IntegrityError as exc:
        # The name check above races with a concurrent insert of the same name; the unique index decides.
        if Zone.objects.filter(name=zone.name).exclude(pk=zone.pk).exists():
            raise ConflictError(f"A zone named {zone.name!r} already exists.") from exc
        raise
    return zone


def zone_create(
    *,
    name: str,
    description: str = "",
    min_latitude: float | None = None,
    min_longitude: float | None = None,
    max_latitude: float | None = None,
    max_longitude: float | None = None,
    center_latitude: float | None = None,
    center_longitude: float | None = None,
) -> Zone:
    """Create a zone. ValidationError for bad values, ConflictError for a name already taken."""
    zone = Zone(
        name=name,
        description=description,
        min_latitude=min_latitude,
        min_longitude=min_longitude,
        max_latitude=max_latitude,
        max_longitude=max_longitude,
        center_latitude=center_latitude,
        center_longitude=center_longitude,
    )
    return _zone_save(zone)


def zone_update(*, zone: Zone, data: dict[str, Any]) -> Zone:
    """Change the given fields of a zone (a partial update); nothing is written if any value is invalid."""
    unknown = set(data) - set(ZONE_FIELDS)
    if unknown:
        raise ValidationError({field: ["Not a zone field."] for field in sorted(unknown)})
    for field, value in data.items():
        if value is None and field in ("name", "description"):
            raise ValidationError({field: ["Cannot be null: omit the field to leave it unchanged."]})
        setattr(zone, field, value)
    return _zone_save(zone)


def zone_delete_refusal(*, zone: Zone) -> str | None:
    """Why `zone` cannot be deleted now (None: it can). The one rule the API and the admin both apply."""
    camera_count = zone.cameras.count()
    if camera_count:
        return f"Zone {zone.name!r} still has {camera_count} camera(s); move them to another zone first."
    return None


def zone_delete(*, zone: Zone) -> None:
    """Delete an empty zone. A zone that still has cameras is refused (ConflictError): move or delete
    them first, so no camera silently loses its zone."""
    refusal = zone_delete_refusal(zone=zone)
    if refusal:
        raise ConflictError(refusal)
    zone.delete()
