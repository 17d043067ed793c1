from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from its_camera.choices import ApiScope, JobOutcome

__all__ = ["ApiKey", "JobRun", "TimeStampedModel"]


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ApiKey(TimeStampedModel):
    """A credential for an integration. Only a SHA-256 digest of the key is stored; the key itself
    is shown once, when it is created."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Identifies the key in logs.")
    hashed_key = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=32, choices=ApiScope.choices), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class JobRun(models.Model):
    """One run of a beat job, written by the job runner (its_camera.jobs) for every job."""

    job = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=JobOutcome.choices, default=JobOutcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rows = models.BigIntegerField(default=0, help_text="Rows the run wrote, moved or deleted.")
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "job_runs"
        verbose_name = "job run"
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-started_at"], name="idx_job_runs_job_started"),
            # The watchdog's and /metrics' "last success of each job".
            models.Index(fields=["job", "outcome", "finished_at"], name="idx_job_runs_last_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"
