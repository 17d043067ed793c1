from django.db import models


class RetentionMethod(models.TextChoices):
    EXPORT = "export", "Export, verify, then drop"
    DELETE = "delete", "Delete"


class KeepUnit(models.TextChoices):
    DAYS = "days"
    MONTHS = "months"


class ArchiveAction(models.TextChoices):
    EXPORT = "export", "Export and drop a partition"
    DROP = "drop", "Drop a partition (delete policy)"
    DELETE = "delete", "Delete rows in batches"
    RESTORE = "restore", "Restore an archive"
    TIER = "tier", "Write a sealed partition cold (Parquet) and drop it"
    DELETE_COLD = "delete_cold", "Delete a cold partition's file"


class ArchiveReason(models.TextChoices):
    EXPIRED = "expired", "Older than keep-for"
    SIZE_CAP = "size_cap", "Table over its size cap"
    OPERATOR = "operator", "Asked by an operator"


class ArchiveState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DROPPED = "dropped"  # exported (if export) and verified, then detached and dropped
    DELETED = "deleted"  # rows deleted in batches (plain tables)
    RESTORED = "restored"
    FAILED = "failed"
