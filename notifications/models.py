"""Alert rules, the channels they send to, and the log of every message (the outbox the workers send from)."""

import secrets
from urllib.parse import urlsplit

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.db.models import Q

from cameras.choices import AlertKind, AlertSeverity
from notifications.choices import ChannelKind, DeliveryEvent, DeliveryState

__all__ = ["AlertRule", "NotificationChannel", "NotificationDelivery", "new_webhook_secret"]


MAX_RECIPIENTS = 20


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class NotificationChannel(models.Model):
    """Where messages go: a webhook (JSON POST, signed with `secret`) or email addresses."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    enabled = models.BooleanField(default=True)
    url = models.URLField(max_length=500, blank=True, help_text="Webhook only: http(s) URL that receives a POST.")
    secret = models.CharField(
        max_length=200,
        blank=True,
        default=new_webhook_secret,
        help_text="Webhook only: the HMAC-SHA256 key of the X-ITS-Signature header.",
    )
    email_to = models.TextField(blank=True, help_text="Email only: addresses, one per line or comma-separated.")
    timeout_seconds = models.FloatField(default=5.0, validators=[MinValueValidator(0.5), MaxValueValidator(60)])
    max_attempts = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(20)], help_text="Attempts before giving up."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_channels"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == ChannelKind.WEBHOOK:
            if urlsplit(self.url).scheme not in ("http", "https"):
                errors["url"] = "A webhook needs an http:// or https:// URL."
            if not self.secret:
                errors["secret"] = "A webhook needs a secret to sign its messages with."  # noqa: S105 - a message
        elif self.kind == ChannelKind.EMAIL:
            addresses = self.recipients
            if not addresses:
                errors["email_to"] = "An email channel needs at least one address."
            elif len(addresses) > MAX_RECIPIENTS:
                errors["email_to"] = f"At most {MAX_RECIPIENTS} addresses."
            else:
                for address in addresses:
                    try:
                        validate_email(address)
                    except ValidationError:
                        errors["email_to"] = f"Not an email address: {address[:100]!r}."
                        break
        if errors:
            raise ValidationError(errors)

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_to.replace(",", "\n").splitlines() if address.strip()]

    @property
    def target(self) -> str:
        return self.url if self.kind == ChannelKind.WEBHOOK else ", ".join(self.recipients)


class AlertRule(models.Model):
    """Which alerts reach which channels. Empty criteria match everything: a rule with no kinds, no zones and no
    tags sends every alert at or above `min_severity`."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    kinds = ArrayField(
        models.CharField(max_length=32, choices=AlertKind.choices), default=list, blank=True, help_text="Empty: any."
    )
    min_severity = models.CharField(max_length=16, choices=AlertSeverity.choices, default=AlertSeverity.WARNING)
    zones = models.ManyToManyField(
        "cameras.Zone", blank=True, related_name="+", help_text="Empty: any (and system alerts, which have no zone)."
    )
    camera_tags = ArrayField(
        models.CharField(max_length=64), default=list, blank=True, help_text="The camera must carry all of them."
    )
    channels = models.ManyToManyField(NotificationChannel, related_name="rules")
    remind_after_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="One reminder when the alert is still open (unacknowledged) this long; empty: none.",
    )
    notify_resolved = models.BooleanField(default=True)
    max_messages_per_hour = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(10_000)],
        help_text="Per channel; past it messages are logged as throttled, not sent. 0: no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_rules"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NotificationDelivery(models.Model):
    """One message to one channel: written in the transaction that opened or resolved the alert (so a rolled
    back alert sends nothing), sent by a worker after commit, retried with backoff. The delivery log."""

    alert = models.ForeignKey("cameras.Alert", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=16, choices=DeliveryEvent.choices)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    payload = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notification_deliveries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="idx_delivery_created"),
            models.Index(fields=["channel", "-created_at"], name="idx_delivery_channel_created"),
            models.Index(
                fields=["next_attempt_at"],
                name="idx_delivery_due",
                condition=Q(state__in=["pending", "sending", "retrying"]),
            ),
            models.Index(fields=["alert", "event"], name="idx_delivery_alert_event"),
        ]
        constraints = [
            # One message per alert, rule, channel and event: a retried hook or a second worker cannot double it.
            models.UniqueConstraint(
                fields=["alert", "rule", "channel", "event"],
                condition=Q(alert__isnull=False, rule__isnull=False),
                name="notification_delivery_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel_id} ({self.state})"
