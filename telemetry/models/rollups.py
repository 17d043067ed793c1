"""Rollups: per minute, hour and day aggregates of frames and detections, so analytics and dashboards never
scan the raw partitions (telemetry/services/rollups.py maintains them, docs/analytics.md explains them).

Every rollup row belongs to a *scope*: one camera, one zone (the cameras that were in it when the bucket was
refreshed) or the whole fleet. Zone and fleet rows are aggregated from the raw rows too, not added up from
camera rows, so their p95 is as exact as a camera's. `scope_id` is the camera's or the zone's id, and the
nil UUID for the fleet and for the cameras that belong to no zone.

Ordinary tables, not partitioned: at 10,000 cameras a year of hourly camera rows is 88 M rows of ~150
bytes, and retention deletes minute rows by the (scope, bucket) index in batches; partitioning buys
nothing measurable at that size (docs/analytics.md).
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

__all__ = [
    "NIL_SCOPE_ID",
    "DetectionDailyRollup",
    "DetectionHourlyRollup",
    "DetectionMinuteRollup",
    "FrameDailyRollup",
    "FrameHourlyRollup",
    "FrameMinuteRollup",
    "RollupScope",
    "RollupWatermark",
]

# The fleet's scope_id, and the zone scope_id of cameras without a zone.
NIL_SCOPE_ID = uuid.UUID(int=0)


class RollupScope(models.TextChoices):
    CAMERA = "camera"
    ZONE = "zone"
    FLEET = "fleet"


class RollupBase(models.Model):
    scope = models.CharField(max_length=8, choices=RollupScope.choices)
    scope_id = models.UUIDField(help_text="The camera's or zone's id; the nil UUID for the fleet and for no zone.")
    # Denormalised for filtering and joins; no database FK: history outlives deleted cameras and zones.
    camera = models.ForeignKey(
        "cameras.Camera", null=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    zone = models.ForeignKey(
        "cameras.Zone", null=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    bucket = models.DateTimeField(help_text="Start of the minute, hour or day (UTC).")
    refreshed_at = models.DateTimeField()

    class Meta:
        abstract = True


class FrameRollupBase(RollupBase):
    frames = models.BigIntegerField()
    failed_frames = models.BigIntegerField()
    # Mean = sum / count over frames that carry a processing time: exact when buckets are added up.
    processing_time_count = models.BigIntegerField()
    processing_time_sum = models.FloatField()
    processing_time_p95 = models.FloatField(null=True, help_text="percentile_cont(0.95) over the bucket's raw rows.")
    processing_time_max = models.FloatField(null=True)
    detections = models.BigIntegerField(help_text="Sum of the frames' detection_count.")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.scope} {self.scope_id} @ {self.bucket.isoformat()}: {self.frames} frames"

    @property
    def processing_time_mean(self) -> float | None:
        return self.processing_time_sum / self.processing_time_count if self.processing_time_count else None


class DetectionRollupBase(RollupBase):
    object_type = models.CharField(max_length=32)
    detections = models.BigIntegerField()
    confidence_sum = models.FloatField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.scope} {self.scope_id} @ {self.bucket.isoformat()}: {self.detections} {self.object_type}"


class FrameMinuteRollup(FrameRollupBase):
    class Meta:
        db_table = "telemetry_rollup_frames_minute"
        verbose_name = "frame rollup (minute)"
        constraints = [models.UniqueConstraint(fields=["scope", "scope_id", "bucket"], name="rollup_fmin_key")]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_fmin_scope_bucket")]


class FrameHourlyRollup(FrameRollupBase):
    # A log-scale histogram of processing times (sparse: bins with a count only), so a day's p95 and a
    # window's p95 can be estimated by merging hours (see services.rollups.HISTOGRAM_*).
    histogram_bins = ArrayField(models.IntegerField(), default=list)
    histogram_counts = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        db_table = "telemetry_rollup_frames_hour"
        verbose_name = "frame rollup (hour)"
        constraints = [models.UniqueConstraint(fields=["scope", "scope_id", "bucket"], name="rollup_fhour_key")]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_fhour_scope_bucket")]


class FrameDailyRollup(FrameRollupBase):
    histogram_bins = ArrayField(models.IntegerField(), default=list)
    histogram_counts = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        db_table = "telemetry_rollup_frames_day"
        verbose_name = "frame rollup (day)"
        constraints = [models.UniqueConstraint(fields=["scope", "scope_id", "bucket"], name="rollup_fday_key")]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_fday_scope_bucket")]


class DetectionMinuteRollup(DetectionRollupBase):
    class Meta:
        db_table = "telemetry_rollup_detections_minute"
        verbose_name = "detection rollup (minute)"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "bucket", "object_type"], name="rollup_dmin_key")
        ]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_dmin_scope_bucket")]


class DetectionHourlyRollup(DetectionRollupBase):
    class Meta:
        db_table = "telemetry_rollup_detections_hour"
        verbose_name = "detection rollup (hour)"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "bucket", "object_type"], name="rollup_dhour_key")
        ]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_dhour_scope_bucket")]


class DetectionDailyRollup(DetectionRollupBase):
    class Meta:
        db_table = "telemetry_rollup_detections_day"
        verbose_name = "detection rollup (day)"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id", "bucket", "object_type"], name="rollup_dday_key")
        ]
        indexes = [models.Index(fields=["scope", "bucket"], name="rollup_dday_scope_bucket")]


class RollupWatermark(models.Model):
    """How far the rollups are complete: every raw row with timestamp < `watermark` has been aggregated
    (late rows up to ROLLUP_GRACE_SECONDS behind it are picked up by the next runs). One row per
    rollup family; the beat task moves it forward and records its last run here."""

    name = models.CharField(max_length=32, primary_key=True)
    watermark = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_rows = models.BigIntegerField(default=0, help_text="Rollup rows written by the last run.")
    last_run_raw_rows = models.BigIntegerField(default=0, help_text="Raw frame rows the last run aggregated.")
    last_run_ms = models.FloatField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "telemetry_rollup_watermarks"
        verbose_name = "rollup watermark"

    def __str__(self) -> str:
        return f"{self.name} @ {self.watermark.isoformat()}"
