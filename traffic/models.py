"""Traffic counts (docs/traffic.md): counting lines and regions per camera (versioned: an edit applies from its
`valid_from` on), and the counts derived from tracked detections in 15-minute, hour and day buckets.

Counts are kept without database foreign keys to cameras, lines and regions: history outlives a deleted camera
or a closed line, as in telemetry's rollups.
"""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from traffic.choices import Direction, Granularity, InSide, Scope

__all__ = [
    "CountingLine",
    "CountingLineVersion",
    "LineCount",
    "LineCrossing",
    "ObjectCount",
    "Region",
    "RegionCount",
    "RegionMinute",
    "RegionTrackQuarter",
    "RegionVersion",
    "TrackDay",
    "TrackQuarter",
]

MAX_FRAME_PIXELS = 32767  # frame width/height are int2 in frame_metadata
COORDINATE_VALIDATORS = [MinValueValidator(0), MaxValueValidator(MAX_FRAME_PIXELS)]


class CountingLine(models.Model):
    """A named line on one camera's image. Its geometry lives in versions; `closed_at` ends counting."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="counting_lines")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True, help_text="No crossings are counted from this moment.")

    class Meta:
        db_table = "traffic_lines"
        ordering = ["camera__name", "name"]
        constraints = [models.UniqueConstraint(fields=["camera", "name"], name="traffic_line_camera_name")]

    def __str__(self) -> str:
        return self.name


class CountingLineVersion(models.Model):
    """The line's geometry from `valid_from` until `valid_until` (open: still in force). Two points in image
    pixels (origin top-left, y down) and which side is "in", seen on the image walking from point 1 to 2."""

    line = models.ForeignKey(CountingLine, on_delete=models.CASCADE, related_name="versions")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    x1 = models.FloatField(validators=COORDINATE_VALIDATORS)
    y1 = models.FloatField(validators=COORDINATE_VALIDATORS)
    x2 = models.FloatField(validators=COORDINATE_VALIDATORS)
    y2 = models.FloatField(validators=COORDINATE_VALIDATORS)
    in_side = models.CharField(max_length=5, choices=InSide.choices)
    frame_width = models.PositiveSmallIntegerField()
    frame_height = models.PositiveSmallIntegerField()

    class Meta:
        db_table = "traffic_line_versions"
        ordering = ["line", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["line"], condition=Q(valid_until__isnull=True), name="traffic_line_one_open_version"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="traffic_line_version_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_id} from {self.valid_from.isoformat()}"


class Region(models.Model):
    """A named polygon on one camera's image (occupancy and dwell). Geometry in versions, as lines."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    camera = models.ForeignKey("cameras.Camera", on_delete=models.CASCADE, related_name="traffic_regions")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "traffic_regions"
        ordering = ["camera__name", "name"]
        constraints = [models.UniqueConstraint(fields=["camera", "name"], name="traffic_region_camera_name")]

    def __str__(self) -> str:
        return self.name


class RegionVersion(models.Model):
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="versions")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    points = models.JSONField(help_text="[[x, y], ...] in image pixels, 3 to 32 vertices, not self-intersecting.")
    # PostgreSQL's built-in polygon literal of `points`, what the counting SQL tests points against (`<@`).
    polygon = models.TextField()
    frame_width = models.PositiveSmallIntegerField()
    frame_height = models.PositiveSmallIntegerField()

    class Meta:
        db_table = "traffic_region_versions"
        ordering = ["region", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["region"], condition=Q(valid_until__isnull=True), name="traffic_region_one_open_version"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="traffic_region_version_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region_id} from {self.valid_from.isoformat()}"


# --- derived rows (written only by traffic.services.counting) ------------------------------------------------


class TrackQuarter(models.Model):
    """One track's presence in one 15-minute bucket: the unit every object count is built from."""

    camera_id = models.UUIDField()
    track_id = models.BigIntegerField()
    bucket = models.DateTimeField()
    object_type = models.CharField(max_length=32, help_text="The class of the track's first observation here.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    observations = models.IntegerField()

    class Meta:
        db_table = "traffic_track_quarters"
        constraints = [
            models.UniqueConstraint(fields=["camera_id", "track_id", "bucket"], name="traffic_track_quarter_key")
        ]
        indexes = [models.Index(fields=["bucket", "camera_id"], name="traffic_track_quarter_bucket")]

    def __str__(self) -> str:
        return f"track {self.track_id} of {self.camera_id} @ {self.bucket.isoformat()}"


class TrackDay(models.Model):
    """One track's first observation of a UTC day: a day's distinct objects are counted from these."""

    camera_id = models.UUIDField()
    track_id = models.BigIntegerField()
    day = models.DateTimeField()
    object_type = models.CharField(max_length=32)
    first_seen = models.DateTimeField()

    class Meta:
        db_table = "traffic_track_days"
        constraints = [models.UniqueConstraint(fields=["camera_id", "track_id", "day"], name="traffic_track_day_key")]
        indexes = [models.Index(fields=["camera_id", "first_seen"], name="traffic_track_day_first")]

    def __str__(self) -> str:
        return f"track {self.track_id} of {self.camera_id} on {self.day.date()}"


class ObjectCount(models.Model):
    """Distinct tracks by class per camera, zone or fleet and bucket."""

    granularity = models.CharField(max_length=5, choices=Granularity.choices)
    scope = models.CharField(max_length=6, choices=Scope.choices)
    scope_id = models.UUIDField(help_text="The camera's or zone's id; the nil UUID for the fleet and for no zone.")
    camera_id = models.UUIDField(null=True)
    zone_id = models.UUIDField(null=True)
    bucket = models.DateTimeField()
    object_type = models.CharField(max_length=32)
    objects = models.BigIntegerField(help_text="Distinct tracks seen in the bucket.")
    first_in_day = models.BigIntegerField(
        db_default=0, help_text="15-minute rows: tracks first seen of their UTC day in this bucket."
    )
    refreshed_at = models.DateTimeField()

    rows = models.Manager()  # `objects` is a count column here

    class Meta:
        db_table = "traffic_object_counts"
        default_manager_name = "rows"
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "scope", "scope_id", "bucket", "object_type"], name="traffic_object_count_key"
            )
        ]
        indexes = [models.Index(fields=["granularity", "bucket"], name="traffic_object_count_bucket")]

    def __str__(self) -> str:
        return f"{self.scope} {self.scope_id} @ {self.bucket.isoformat()}: {self.objects} {self.object_type}"


class LineCrossing(models.Model):
    """A track's first crossing of a line in one direction (counted once per track, line and direction)."""

    line_id = models.UUIDField()
    version_id = models.BigIntegerField()
    camera_id = models.UUIDField()
    track_id = models.BigIntegerField()
    direction = models.CharField(max_length=3, choices=Direction.choices)
    timestamp = models.DateTimeField(help_text="The observation on the far side of the line.")
    object_type = models.CharField(max_length=32)

    class Meta:
        db_table = "traffic_line_crossings"
        constraints = [
            models.UniqueConstraint(
                fields=["line_id", "camera_id", "track_id", "direction"], name="traffic_line_crossing_key"
            )
        ]
        indexes = [
            models.Index(fields=["timestamp"], name="traffic_line_crossing_ts"),
            models.Index(fields=["line_id", "timestamp"], name="traffic_line_crossing_line_ts"),
        ]

    def __str__(self) -> str:
        return f"track {self.track_id} {self.direction} line {self.line_id} @ {self.timestamp.isoformat()}"


class LineCount(models.Model):
    granularity = models.CharField(max_length=5, choices=Granularity.choices)
    bucket = models.DateTimeField()
    line_id = models.UUIDField()
    camera_id = models.UUIDField()
    zone_id = models.UUIDField(null=True, help_text="The camera's zone when the bucket was counted.")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    object_type = models.CharField(max_length=32)
    crossings = models.BigIntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        db_table = "traffic_line_counts"
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "line_id", "bucket", "direction", "object_type"], name="traffic_line_count_key"
            )
        ]
        indexes = [
            models.Index(fields=["granularity", "camera_id", "bucket"], name="traffic_line_count_camera"),
            models.Index(fields=["granularity", "zone_id", "bucket"], name="traffic_line_count_zone"),
            models.Index(fields=["granularity", "bucket"], name="traffic_line_count_bucket"),
        ]

    def __str__(self) -> str:
        return f"line {self.line_id} @ {self.bucket.isoformat()}: {self.crossings} {self.object_type} {self.direction}"


class RegionMinute(models.Model):
    """Distinct tracks inside a region in one minute (occupancy)."""

    region_id = models.UUIDField()
    minute = models.DateTimeField()
    tracks = models.IntegerField()

    class Meta:
        db_table = "traffic_region_minutes"
        constraints = [models.UniqueConstraint(fields=["region_id", "minute"], name="traffic_region_minute_key")]
        indexes = [models.Index(fields=["minute"], name="traffic_region_minute_ts")]

    def __str__(self) -> str:
        return f"region {self.region_id} @ {self.minute.isoformat()}: {self.tracks}"


class RegionTrackQuarter(models.Model):
    """A track's first and last observation inside a region within one 15-minute bucket (dwell)."""

    region_id = models.UUIDField()
    track_id = models.BigIntegerField()
    bucket = models.DateTimeField()
    object_type = models.CharField(max_length=32)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "traffic_region_track_quarters"
        constraints = [
            models.UniqueConstraint(fields=["region_id", "track_id", "bucket"], name="traffic_region_track_key")
        ]
        indexes = [models.Index(fields=["bucket"], name="traffic_region_track_bucket")]

    def __str__(self) -> str:
        return f"track {self.track_id} in region {self.region_id} @ {self.bucket.isoformat()}"


class RegionCount(models.Model):
    """Per region and bucket: occupancy (on the all-classes row, object_type '') and dwell by class."""

    granularity = models.CharField(max_length=5, choices=Granularity.choices)
    bucket = models.DateTimeField()
    region_id = models.UUIDField()
    camera_id = models.UUIDField()
    zone_id = models.UUIDField(null=True)
    object_type = models.CharField(max_length=32, blank=True, help_text="'' = all classes.")
    tracks = models.BigIntegerField(help_text="Distinct tracks seen inside the region in the bucket.")
    dwell_p50_seconds = models.FloatField(null=True)
    dwell_p85_seconds = models.FloatField(null=True)
    occupancy_max = models.IntegerField(null=True, help_text="Most distinct tracks inside in one minute.")
    occupancy_mean = models.FloatField(null=True, help_text="Distinct tracks inside per minute, mean over the bucket.")
    refreshed_at = models.DateTimeField()

    class Meta:
        db_table = "traffic_region_counts"
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "region_id", "bucket", "object_type"], name="traffic_region_count_key"
            )
        ]
        indexes = [
            models.Index(fields=["granularity", "camera_id", "bucket"], name="traffic_region_count_camera"),
            models.Index(fields=["granularity", "bucket"], name="traffic_region_count_bucket"),
        ]

    def __str__(self) -> str:
        return f"region {self.region_id} @ {self.bucket.isoformat()}: {self.tracks} {self.object_type or 'all'}"
