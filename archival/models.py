"""Retention policies, what each archive run did, and what each beat job did."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from archival.choices import ArchiveAction, ArchiveReason, ArchiveState, KeepUnit, RetentionMethod
from archival.targets import RetentionTable, is_partitioned

__all__ = ["ArchiveRun", "PartitionHealth", "RetentionPolicy", "months_before"]


def months_before(moment: datetime, months: int) -> datetime:
    """`moment` shifted back by calendar months, the day clamped to the target month's length."""
    year, month_index = divmod(moment.month - 1 - months, 12)
    year += moment.year
    month = month_index + 1
    next_month = moment.replace(year=year + month // 12, month=month % 12 + 1, day=1)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


class RetentionPolicy(models.Model):
    """How long one table keeps its rows, and what happens to older ones (the seed's archive_data_policy)."""

    name = models.SlugField(max_length=64, unique=True, help_text="e.g. frame_metadata_retention")
    table = models.CharField(max_length=64, choices=RetentionTable.choices, unique=True)
    keep_for = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100 * 366)], help_text="How long rows are kept."
    )
    keep_unit = models.CharField(max_length=8, choices=KeepUnit.choices, default=KeepUnit.MONTHS)
    method = models.CharField(max_length=8, choices=RetentionMethod.choices)
    enabled = models.BooleanField(default=True)
    size_cap_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Partitioned tables only: past this size the oldest partitions go first (same path).",
    )
    cold_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100 * 366)],
        help_text="Partitioned tables: sealed partitions whose range ended this many days ago are written as "
        "verified Parquet files and dropped from PostgreSQL (still readable; docs/storage.md). Empty: never.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "archival_retention_policy"
        ordering = ["table"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return self.name

    @property
    def keep_for_display(self) -> str:
        return f"{self.keep_for} {self.keep_unit if self.keep_for != 1 else self.keep_unit.rstrip('s')}"

    def cutoff(self, now: datetime) -> datetime:
        """Rows older than this go; a partition goes only when its whole range ends at or before it."""
        if self.keep_unit == KeepUnit.MONTHS:
            return months_before(now, self.keep_for)
        return now - timedelta(days=self.keep_for)

    def cutoff_days(self) -> int:
        """Keep-for in days (a month counted as 28, the shortest), to compare with cold_after_days."""
        return self.keep_for * (28 if self.keep_unit == KeepUnit.MONTHS else 1)

    def clean(self) -> None:
        errors = {}
        if self.table and not is_partitioned(self.table):
            if self.method == RetentionMethod.EXPORT:
                errors["method"] = "Export is for partitioned tables; plain tables are deleted in batches."
            if self.size_cap_bytes is not None:
                errors["size_cap_bytes"] = "A size cap applies to partitioned tables only."
            if self.cold_after_days is not None:
                errors["cold_after_days"] = "Only partitioned tables have a cold tier."
        if self.cold_after_days is not None and self.keep_for and self.cutoff_days() <= self.cold_after_days:
            errors["cold_after_days"] = "Rows go cold before keep-for ends: make it shorter than keep-for."
        if errors:
            raise ValidationError(errors)


class ArchiveRun(models.Model):
    """One partition exported/dropped, one batch-delete run, or one restore: what, how much, where, and how it went."""

    policy = models.ForeignKey(RetentionPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    policy_name = models.CharField(max_length=64, blank=True, help_text="Kept when the policy is deleted.")
    action = models.CharField(max_length=16, choices=ArchiveAction.choices)
    reason = models.CharField(max_length=16, choices=ArchiveReason.choices, default=ArchiveReason.EXPIRED)
    table = models.CharField(max_length=64)
    partition = models.CharField(max_length=128, blank=True)
    range_start = models.DateTimeField(null=True, blank=True)
    range_end = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=ArchiveState.choices, default=ArchiveState.RUNNING)
    rows = models.BigIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True, help_text="Size of the archive file (compressed).")
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the archive file.")
    content_checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the uncompressed rows.")
    location = models.CharField(max_length=500, blank=True, help_text="Archive file, in the archive storage.")
    manifest_location = models.CharField(max_length=500, blank=True)
    restored_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="restores")
    requested_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "archival_archive_run"
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="idx_archive_run_started"),
            models.Index(fields=["table", "partition"], name="idx_archive_run_partition"),
            models.Index(fields=["state"], name="idx_archive_run_state"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.partition or self.table} ({self.state})"

    @property
    def is_restorable(self) -> bool:
        return self.action == ArchiveAction.EXPORT and self.state == ArchiveState.DROPPED and bool(self.location)


class PartitionHealth(models.Model):
    """No table: the admin's entry for the partition health page (archival/admin.py), listed on the index."""

    class Meta:
        managed = False
        db_table = "archival_partition_health_page"  # never created, never queried
        verbose_name = "partition health"
        verbose_name_plural = "partition health"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return "partition health"
