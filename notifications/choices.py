from django.db import models


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (JSON, HMAC-SHA256 signed)"
    EMAIL = "email", "Email"


class DeliveryEvent(models.TextChoices):
    OPENED = "opened", "Alert opened"
    REMINDER = "reminder", "Reminder: still open"
    RESOLVED = "resolved", "Alert resolved"
    TEST = "test", "Test message"


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # written with the alert, waiting for a worker
    SENDING = "sending"  # claimed by a worker (lease until next_attempt_at)
    RETRYING = "retrying"  # an attempt failed; the next one is due at next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # every attempt failed: a notification_failed alert is open for the channel
    THROTTLED = "throttled"  # over the rule's messages per hour: recorded, not sent


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
DUE_STATES = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING)
