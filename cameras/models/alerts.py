from django.db import models
from django.db.models import Q
from django.utils import timezone
from psqlextra.manager import PostgresManager

from cameras.choices import ACTIVE_ALERT_STATES, AlertKind, AlertSeverity, AlertState

__all__ = ["Alert"]


class Alert(models.Model):
    """Something an operator should look at. At most one active (open or acknowledged) alert exists
    per (camera, kind, subject): raising it again updates that alert instead of adding another.
    `subject` tells system alerts of one kind apart (a table, a partition, a job)."""

    camera = models.ForeignKey("cameras.Camera", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=200, blank=True, default="")
    severity = models.CharField(max_length=16, choices=AlertSeverity.choices, default=AlertSeverity.WARNING)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    # A default, not auto_now_add: alert_raise(now=…) opens the alert at the moment it was given (auto_now_add
    # would overwrite it with the wall clock, and a replay or a pinned clock would see a new alert as old).
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, help_text="User name or API key name.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, help_text="User name, API key name or 'system'.")

    # psqlextra's manager: raising an alert is one INSERT … ON CONFLICT on the partial unique index.
    objects = PostgresManager()

    class Meta:
        db_table = "alerts"
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["state", "-opened_at"], name="idx_alerts_state_opened"),
            models.Index(fields=["camera", "state"], name="idx_alerts_camera_state"),
            models.Index(fields=["resolved_at"], name="idx_alerts_resolved_at", condition=Q(state=AlertState.RESOLVED)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["camera", "kind", "subject"],
                condition=Q(state__in=ACTIVE_ALERT_STATES),
                nulls_distinct=False,
                name="alerts_one_active_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"
