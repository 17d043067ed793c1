import uuid

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import MD5, Cast
from psqlextra.models import PostgresPartitionedModel
from psqlextra.types import PostgresPartitioningMethod

from telemetry.choices import MetricAlertLevel
from telemetry.models.fields import PartitionedIdentityField

__all__ = ["HOST_METRICS_CAMERA_ID", "SystemMetric", "SystemMetricRecord"]

# The camera id host metrics are stored under (the nil UUID, never a real camera's uuid4): see SystemMetric.camera.
HOST_METRICS_CAMERA_ID = uuid.UUID(int=0)


class SystemMetric(PostgresPartitionedModel):
    """A measurement (fps, gpu_utilization, inference latency, ...) of a camera's pipeline, or of a
    host when `camera_id` is HOST_METRICS_CAMERA_ID."""

    # camera_id first: Citus distributes this table by camera (docs/scaling.md).
    pk = models.CompositePrimaryKey("camera", "id", "timestamp")
    id = PartitionedIdentityField()
    # Host metrics carry HOST_METRICS_CAMERA_ID (the nil UUID) rather than NULL: a distribution column cannot be
    # NULL, and a key including it cannot either. The API still speaks `camera_id: null` for them.
    camera = models.ForeignKey(
        "cameras.Camera", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    timestamp = models.DateTimeField()
    name = models.CharField(max_length=64)
    value = models.FloatField()
    labels = models.JSONField(default=dict, blank=True)
    alert_level = models.CharField(max_length=16, choices=MetricAlertLevel.choices, default=MetricAlertLevel.NONE)

    class PartitioningMeta:
        method = PostgresPartitioningMethod.RANGE
        key = ["timestamp"]

    class Meta:
        db_table = "system_metrics"
        verbose_name = "system metric"
        indexes = [
            # The latest value of a camera's metric (the realtime status view's fps) and a metric's history.
            models.Index(fields=["camera", "name", "timestamp"], name="idx_system_metrics_camera_name"),
            GinIndex(fields=["labels"], opclasses=["jsonb_path_ops"], name="idx_system_metrics_labels"),
            models.Index(
                fields=["alert_level", "timestamp"],
                name="idx_system_metrics_alerting",
                condition=~Q(alert_level=MetricAlertLevel.NONE),
            ),
        ]
        constraints = [
            # The natural key: a retried batch stores nothing twice (migration 0007; ingest uses ON CONFLICT DO
            # NOTHING on it). Host metrics (no camera) collide too: NULLS NOT DISTINCT.
            models.UniqueConstraint(
                F("camera"),
                F("name"),
                F("timestamp"),
                MD5(Cast("labels", models.TextField())),
                name="uniq_system_metrics_sample",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value} @ {self.timestamp.isoformat()}"


class SystemMetricRecord(models.Model):
    """Read-only admin twin of SystemMetric (see FrameMetadataRecord for why)."""

    id = models.BigIntegerField(primary_key=True)
    camera = models.ForeignKey(
        "cameras.Camera", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    timestamp = models.DateTimeField()
    name = models.CharField(max_length=64)
    value = models.FloatField()
    labels = models.JSONField()
    alert_level = models.CharField(max_length=16, choices=MetricAlertLevel.choices)

    class Meta:
        managed = False
        db_table = "system_metrics"
        verbose_name = "system metric"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.name}={self.value} @ {self.timestamp.isoformat()}"
