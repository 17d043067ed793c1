from django.db import models


class JobOutcome(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # another run held the lock, or the job had nothing it could do now
    FAILED = "failed"


class ApiScope(models.TextChoices):
    CAMERAS_READ = "cameras:read", "Read cameras, zones and status"
    CAMERAS_WRITE = "cameras:write", "Register and change cameras and zones, send heartbeats"
    TELEMETRY_WRITE = "telemetry:write", "Push frames, detections and metrics"
    TELEMETRY_READ = "telemetry:read", "Read frames and analytics"
    ALERTS_WRITE = "alerts:write", "Acknowledge and resolve alerts"
