from django.db import models

from telemetry.choices import StorageTier

__all__ = ["PartitionTier"]


class PartitionTier(models.Model):
    """The storage tier of one telemetry partition that has left the hot tier (no row: hot). Written by the
    seal job (telemetry.services.tiering) and by the cold tiering service (archival), read by every selector
    that answers a time range (telemetry.selectors.timeline), so a range reads the same whatever its tier."""

    table = models.CharField(max_length=64)
    partition = models.CharField(max_length=128, unique=True)
    range_start = models.DateTimeField()
    range_end = models.DateTimeField()
    tier = models.CharField(max_length=8, choices=StorageTier.choices, default=StorageTier.SEALED)
    sealed_at = models.DateTimeField(null=True, blank=True)
    sealed_indexes = models.JSONField(default=list, blank=True, help_text="Indexes the seal job built.")
    hot_bytes = models.BigIntegerField(null=True, blank=True, help_text="Size in PostgreSQL just before sealing.")
    sealed_bytes = models.BigIntegerField(null=True, blank=True, help_text="Size in PostgreSQL once sealed.")
    cold_at = models.DateTimeField(null=True, blank=True)
    rows = models.BigIntegerField(null=True, blank=True)
    location = models.CharField(max_length=500, blank=True, help_text="The Parquet file, in the archive storage.")
    bytes = models.BigIntegerField(null=True, blank=True, help_text="Size of the Parquet file.")
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the Parquet file.")
    content_checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the rows (see tiering).")
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_error = models.TextField(blank=True, help_text="Why the cold file failed its last verification.")

    class Meta:
        db_table = "telemetry_partition_tier"
        ordering = ["table", "range_start"]
        indexes = [models.Index(fields=["table", "tier", "range_start"], name="idx_partition_tier_range")]

    def __str__(self) -> str:
        return f"{self.partition} ({self.tier})"
