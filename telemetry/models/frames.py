from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod

from telemetry.choices import ProcessingStatus
from telemetry.models.fields import PartitionedIdentityField

__all__ = ["FrameMetadata", "FrameMetadataRecord"]


class FrameMetadata(PostgresPartitionedModel):
    """One processed video frame: when, which camera, how processing went, and a summary of what was
    seen. Range-partitioned on `timestamp` (see telemetry/partitioning.py); written by COPY
    (telemetry/services/ingest.py), never row by row."""

    # camera_id first: Citus distributes these tables by camera and refuses a key without it (docs/scaling.md).
    pk = models.CompositePrimaryKey("camera", "id", "timestamp")
    id = PartitionedIdentityField()
    # No database FK: a per-row trigger check costs COPY throughput, and a camera may be deleted while
    # its history stays. The ingest service validates a batch's cameras with one query instead.
    camera = models.ForeignKey(
        "cameras.Camera", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    timestamp = models.DateTimeField()
    frame_number = models.BigIntegerField(default=0)
    processing_status = models.CharField(
        max_length=16, choices=ProcessingStatus.choices, default=ProcessingStatus.PENDING
    )
    processing_time_ms = models.FloatField(null=True, blank=True)
    width = models.PositiveSmallIntegerField(null=True, blank=True)
    height = models.PositiveSmallIntegerField(null=True, blank=True)
    quality_score = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # Summary fields derived from the frame's detections at ingest, so dashboards never unnest JSON.
    detection_count = models.PositiveSmallIntegerField(default=0)
    vehicle_count = models.PositiveSmallIntegerField(default=0)
    person_count = models.PositiveSmallIntegerField(default=0)
    bicycle_count = models.PositiveSmallIntegerField(default=0)
    max_confidence = models.FloatField(null=True, blank=True)
    # The frame's detections are stored once, as Detection rows (with their extra keys in `attributes`):
    # the JSONB copy this table used to carry was 850 of its 970 bytes a row (docs/storage.md).

    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["timestamp"]

    class Meta:
        db_table = "frame_metadata"
        verbose_name = "frame"
        indexes = [
            models.Index(fields=["processing_status", "timestamp"], name="idx_frame_metadata_status_ts"),
            models.Index(
                fields=["camera", "timestamp"],
                name="idx_frame_metadata_failed",
                condition=Q(processing_status=ProcessingStatus.FAILED),
            ),
            # Rollups read a time window across all cameras; rows arrive in time order, so a BRIN index
            # (a few pages per partition, next to nothing per insert) serves it (telemetry 0004).
            BrinIndex(fields=["timestamp"], name="idx_frame_metadata_ts_brin", pages_per_range=32),
        ]
        constraints = [
            # The seed's (camera_id, timestamp) index, unique: a frame is identified by its camera and
            # timestamp (status updates address it so), and a replayed batch cannot double a frame.
            models.UniqueConstraint(fields=["camera", "timestamp"], name="idx_frame_metadata_camera_ts"),
        ]

    def __str__(self) -> str:
        return f"frame {self.camera_id} @ {self.timestamp.isoformat()}"


class FrameMetadataRecord(models.Model):
    """Read-only twin of FrameMetadata over the same table, for the admin: Django's admin refuses a
    composite primary key, so this model declares `id` (unique in practice: an identity column) as its
    key. Never written through; tests keep its columns in step with FrameMetadata."""

    id = models.BigIntegerField(primary_key=True)
    camera = models.ForeignKey("cameras.Camera", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    timestamp = models.DateTimeField()
    frame_number = models.BigIntegerField()
    processing_status = models.CharField(max_length=16, choices=ProcessingStatus.choices)
    processing_time_ms = models.FloatField(null=True)
    width = models.PositiveSmallIntegerField(null=True)
    height = models.PositiveSmallIntegerField(null=True)
    quality_score = models.FloatField(null=True)
    detection_count = models.PositiveSmallIntegerField()
    vehicle_count = models.PositiveSmallIntegerField()
    person_count = models.PositiveSmallIntegerField()
    bicycle_count = models.PositiveSmallIntegerField()
    max_confidence = models.FloatField(null=True)

    class Meta:
        managed = False
        db_table = "frame_metadata"
        verbose_name = "frame"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"frame {self.camera_id} @ {self.timestamp.isoformat()}"
