"""Create and change notification channels and rules. A webhook can be checked before it is saved: an
unreachable one is refused with the reason, and nothing is written."""

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cameras.models import Zone
from notifications.models import AlertRule, NotificationChannel
from notifications.senders import DeliveryError
from notifications.services.deliveries import channel_transport_send

__all__ = ["channel_create", "channel_verify", "rule_create", "rule_update"]


def channel_verify(*, channel: NotificationChannel, requested_by: str) -> None:
    """Send a test message through a channel that may not be saved yet; ValidationError (on the url or the
    addresses) with the transport's reason when it cannot be delivered."""
    payload = {
        "event": "test",
        "at": timezone.now().isoformat(),
        "message": f"Checking this channel before saving it (requested by {requested_by}).",
        "alert": None,
    }
    try:
        channel_transport_send(channel, payload=payload, delivery_id=None)
    except DeliveryError as error:
        field = "url" if channel.kind == "webhook" else "email_to"
        raise ValidationError({field: f"{error} (nothing was saved)."}) from error


def channel_create(*, verify: bool = True, requested_by: str = "", **fields: Any) -> NotificationChannel:
    """Validate and save a channel; with `verify`, only after a test message went through."""
    channel = NotificationChannel(**fields)
    channel.full_clean()
    if verify:
        channel_verify(channel=channel, requested_by=requested_by or "system")
    channel.save()
    return channel


def _zones(zone_ids: Iterable[uuid.UUID]) -> list[Zone]:
    wanted = list(dict.fromkeys(zone_ids))
    zones = list(Zone.objects.filter(pk__in=wanted))
    missing = sorted(str(zone_id) for zone_id in set(wanted) - {zone.pk for zone in zones})
    if missing:
        raise ValidationError({"zones": f"Unknown zone(s): {', '.join(missing[:20])}."})
    return zones


def _channels(channel_ids: Iterable[int]) -> list[NotificationChannel]:
    wanted = list(dict.fromkeys(channel_ids))
    if not wanted:
        raise ValidationError({"channels": "A rule needs at least one channel."})
    channels = list(NotificationChannel.objects.filter(pk__in=wanted))
    missing = sorted(set(wanted) - {channel.pk for channel in channels})
    if missing:
        raise ValidationError({"channels": f"Unknown channel(s): {', '.join(map(str, missing[:20]))}."})
    return channels


@transaction.atomic
def rule_create(*, zone_ids: Iterable[uuid.UUID] = (), channel_ids: Iterable[int], **fields: Any) -> AlertRule:
    """Validate everything (unknown zones or channels included) before writing anything; one transaction."""
    zones = _zones(zone_ids)
    channels = _channels(channel_ids)
    rule = AlertRule(**fields)
    rule.full_clean()
    rule.save()
    rule.zones.set(zones)
    rule.channels.set(channels)
    return rule


@transaction.atomic
def rule_update(
    *,
    rule: AlertRule,
    zone_ids: Iterable[uuid.UUID] | None = None,
    channel_ids: Iterable[int] | None = None,
    **fields: Any,
) -> AlertRule:
    zones = _zones(zone_ids) if zone_ids is not None else None
    channels = _channels(channel_ids) if channel_ids is not None else None
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    if zones is not None:
        rule.zones.set(zones)
    if channels is not None:
        rule.channels.set(channels)
    return rule
