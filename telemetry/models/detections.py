from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Func, Q
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod

from telemetry.models.fields import PartitionedIdentityField

__all__ = ["Detection", "DetectionRecord", "detection_box"]


def detection_box() -> Func:
    """PostgreSQL's built-in `box(point(x1, y1), point(x2, y2))`: the expression the GiST index is
    built on, so spatial queries must use exactly this expression to use it (no PostGIS needed)."""
    return Func(
        Func(F("bbox_x1"), F("bbox_y1"), function="point", output_field=models.Field()),
        Func(F("bbox_x2"), F("bbox_y2"), function="point", output_field=models.Field()),
        function="box",
        output_field=models.Field(),
    )


class Detection(PostgresPartitionedModel):
    """One object seen in a frame, normalized for analytics. Belongs to the frame with the same
    (camera_id, timestamp); partitioned like frames so both age out together."""

    # Django's identity for a row. The database enforces no key here (telemetry 0013): a unique camera-led index
    # was the largest index of a hot day and nothing needs it, as detections are written only with their frame,
    # whose unique (camera_id, timestamp) refuses a repeated batch (docs/storage.md).
    pk = models.CompositePrimaryKey("camera", "id", "timestamp")
    id = PartitionedIdentityField()
    camera = models.ForeignKey(
        "cameras.Camera", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    timestamp = models.DateTimeField(help_text="The frame's timestamp.")
    object_type = models.CharField(max_length=32)
    confidence = models.FloatField()
    bbox_x1 = models.FloatField()
    bbox_y1 = models.FloatField()
    bbox_x2 = models.FloatField()
    bbox_y2 = models.FloatField()
    track_id = models.BigIntegerField(null=True, blank=True)
    attributes = models.JSONField(
        null=True,
        blank=True,
        help_text="What the sender added beyond the normalized columns (NULL when nothing): the detection is "
        "returned as sent by telemetry.services.batches.detection_document.",
    )

    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["timestamp"]

    class Meta:
        db_table = "detections"
        # Only what ingest and the API's reads need, on every partition (hot ones included): each index here
        # is paid for by every inserted row. Lookups no API query makes (type/confidence, bbox, track) are
        # built per sealed partition when configured (telemetry/tiering.py, docs/storage.md).
        indexes = [
            # A frame's detections: one camera, one timestamp (or a page of them).
            models.Index(fields=["camera", "timestamp"], name="idx_detections_camera_ts"),
            # The detection rollups read a time window across all cameras (see FrameMetadata).
            BrinIndex(fields=["timestamp"], name="idx_detections_ts_brin", pages_per_range=32),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(confidence__gte=0, confidence__lte=1), name="detections_confidence_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.confidence:.2f} @ {self.timestamp.isoformat()}"


class DetectionRecord(models.Model):
    """Read-only admin twin of Detection (see FrameMetadataRecord for why)."""

    id = models.BigIntegerField(primary_key=True)
    camera = models.ForeignKey("cameras.Camera", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    timestamp = models.DateTimeField()
    object_type = models.CharField(max_length=32)
    confidence = models.FloatField()
    bbox_x1 = models.FloatField()
    bbox_y1 = models.FloatField()
    bbox_x2 = models.FloatField()
    bbox_y2 = models.FloatField()
    track_id = models.BigIntegerField(null=True)
    attributes = models.JSONField(null=True)

    class Meta:
        managed = False
        db_table = "detections"
        verbose_name = "detection"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.object_type} {self.confidence:.2f} @ {self.timestamp.isoformat()}"
