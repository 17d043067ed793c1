import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, GistIndex, OpClass
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Upper

from cameras.choices import CameraStatus
from its_camera.models import TimeStampedModel

__all__ = ["Camera", "Zone", "camera_point"]

LATITUDE_VALIDATORS = [MinValueValidator(-90), MaxValueValidator(90)]
LONGITUDE_VALIDATORS = [MinValueValidator(-180), MaxValueValidator(180)]


def camera_point() -> Func:
    """PostgreSQL's built-in `point(longitude, latitude)`: the expression the GiST index is built on,
    so queries must use exactly this expression to use it (no PostGIS needed)."""
    return Func(F("longitude"), F("latitude"), function="point", output_field=models.Field())


class Zone(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    min_latitude = models.FloatField(null=True, blank=True, validators=LATITUDE_VALIDATORS)
    min_longitude = models.FloatField(null=True, blank=True, validators=LONGITUDE_VALIDATORS)
    max_latitude = models.FloatField(null=True, blank=True, validators=LATITUDE_VALIDATORS)
    max_longitude = models.FloatField(null=True, blank=True, validators=LONGITUDE_VALIDATORS)
    center_latitude = models.FloatField(null=True, blank=True, validators=LATITUDE_VALIDATORS)
    center_longitude = models.FloatField(null=True, blank=True, validators=LONGITUDE_VALIDATORS)

    class Meta:
        db_table = "zones"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_latitude__isnull=True)
                | Q(max_latitude__isnull=True)
                | Q(min_latitude__lte=F("max_latitude")),
                name="zones_latitude_range_ordered",
                violation_error_message="The minimum latitude must not be greater than the maximum.",
            ),
            models.CheckConstraint(
                condition=Q(min_longitude__isnull=True)
                | Q(max_longitude__isnull=True)
                | Q(min_longitude__lte=F("max_longitude")),
                name="zones_longitude_range_ordered",
                violation_error_message="The minimum longitude must not be greater than the maximum.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Camera(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=CameraStatus.choices, default=CameraStatus.OFFLINE)
    is_active = models.BooleanField(default=True)
    location = models.CharField(max_length=255, blank=True, help_text="Where it is, e.g. an intersection name.")
    latitude = models.FloatField(null=True, blank=True, validators=LATITUDE_VALIDATORS)
    longitude = models.FloatField(null=True, blank=True, validators=LONGITUDE_VALIDATORS)
    # db_index=False: idx_cameras_zone_active (zone_id, is_active) already serves zone lookups.
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="cameras", db_index=False
    )
    config = models.JSONField(default=dict, blank=True, help_text="Stream URL, resolution, fps, model thresholds.")
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The fps the camera reported with its last heartbeat; the realtime view reads it until telemetry's
    # system metrics take over.
    last_fps = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])

    class Meta:
        db_table = "cameras"
        ordering = ["name"]
        # The seed's indexes, each under the seed's name.
        indexes = [
            models.Index(fields=["status"], name="idx_cameras_status"),
            models.Index(fields=["is_active", "location"], name="idx_cameras_active_location"),
            models.Index(fields=["zone", "is_active"], name="idx_cameras_zone_active"),
            GinIndex(fields=["config"], name="idx_cameras_config_gin"),
            GinIndex(fields=["tags"], name="idx_cameras_tags_gin"),
            GistIndex(camera_point(), name="idx_cameras_location_gist"),
            # Beyond the seed: name search (`icontains`, which PostgreSQL runs as UPPER(name) LIKE …).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="idx_cameras_name_trgm"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["name"], name="idx_cameras_name"),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="cameras_latitude_in_range",
                violation_error_message="Latitude must be between -90 and 90.",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="cameras_longitude_in_range",
                violation_error_message="Longitude must be between -180 and 180.",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__isnull=False, longitude__isnull=False),
                name="cameras_position_complete",
                violation_error_message="Latitude and longitude go together: give both or neither.",
            ),
        ]

    def __str__(self) -> str:
        return self.name
