from django.db import models


class ProcessingStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class MetricAlertLevel(models.TextChoices):
    NONE = "none"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class PartitionSize(models.TextChoices):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


# Object classes counted into a frame's summary fields. Models name classes differently; these are
# the COCO-style names inference workers send, lower-cased.
VEHICLE_OBJECT_TYPES = frozenset({"car", "truck", "bus", "motorcycle", "van", "trailer", "vehicle"})
PERSON_OBJECT_TYPES = frozenset({"person", "pedestrian"})
BICYCLE_OBJECT_TYPES = frozenset({"bicycle", "cyclist"})


class StorageTier(models.TextChoices):
    """Where a partition's rows live (docs/storage.md). Hot: still receiving rows, only the indexes ingest and
    recent reads need. Sealed: past its range and the late-row grace; frozen, analyzed, its read indexes built.
    Cold: a verified Parquet file in the archive storage; the PostgreSQL partition is gone."""

    HOT = "hot"
    SEALED = "sealed"
    COLD = "cold"
