from django.db import models


class CameraStatus(models.TextChoices):
    ONLINE = "online"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"
    ERROR = "error"


class ConnectionStatus(models.TextChoices):
    """How recently a camera was heard from (the realtime_camera_status view)."""

    STREAMING = "streaming", "Streaming (< 30 s)"
    RECENT = "recent", "Recent (< 5 min)"
    STALE = "stale", "Stale"


class AlertKind(models.TextChoices):
    CAMERA_OFFLINE = "camera_offline"
    PROCESSING_FAILURES = "processing_failures"
    METRIC_THRESHOLD = "metric_threshold"
    PARTITION_DEFAULT_ROWS = "partition_default_rows"
    ARCHIVAL_FAILED = "archival_failed"
    JOB_FAILED = "job_failed"
    JOB_OVERDUE = "job_overdue"
    ROLLUP_LAG = "rollup_lag"
    NOTIFICATION_FAILED = "notification_failed"


class AlertSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ACTIVE_ALERT_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)
