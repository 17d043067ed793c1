from django.db import models

from cameras.choices import CameraStatus, ConnectionStatus

__all__ = ["RealtimeCameraStatus"]


class RealtimeCameraStatus(models.Model):
    """Read-only model over the `realtime_camera_status` SQL view (migration 0002): one row per active
    camera with its connection status, computed by PostgreSQL from `last_seen_at` at query time."""

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=CameraStatus.choices)
    zone = models.ForeignKey(
        "cameras.Zone", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    is_active = models.BooleanField()
    location = models.CharField(max_length=255)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    last_seen_at = models.DateTimeField(null=True)
    connection_status = models.CharField(max_length=16, choices=ConnectionStatus.choices)
    fps_current = models.FloatField(null=True)

    class Meta:
        managed = False
        db_table = "realtime_camera_status"
        ordering = ["name"]
        verbose_name = "realtime camera status"
        verbose_name_plural = "realtime camera status"

    def __str__(self) -> str:
        return f"{self.name}: {self.connection_status}"
