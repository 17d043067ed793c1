"""Notifications API: channels, alert rules, the delivery log, a test message. Thin over the services. Scope
alerts:write for everything (channel secrets are never returned, except once when the API generates one)."""

import uuid
from datetime import datetime
from typing import Annotated

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status

from cameras.choices import AlertKind, AlertSeverity
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.pagination import CursorPage
from its_camera.choices import ApiScope
from notifications.choices import ChannelKind, DeliveryEvent, DeliveryState
from notifications.models import AlertRule, NotificationChannel, NotificationDelivery, new_webhook_secret
from notifications.services.channels import channel_create, rule_create
from notifications.services.deliveries import channel_send_test

router = Router(tags=["notifications"])
AUTH = ApiKeyAuth(ApiScope.ALERTS_WRITE)

Email = Annotated[str, Field(max_length=254)]
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class ChannelIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    kind: ChannelKind
    enabled: bool = True
    url: str = Field("", max_length=500)
    secret: str | None = Field(None, min_length=16, max_length=200, description="Generated when omitted.")
    email_to: list[Email] = Field(default_factory=list, max_length=20)
    timeout_seconds: float = Field(5.0, ge=0.5, le=60)
    max_attempts: int = Field(5, ge=1, le=20)
    verify: bool = Field(True, description="Send a test message first; refuse the channel (422) if it fails.")


class ChannelOut(Schema):
    id: int
    name: str
    kind: str
    enabled: bool
    url: str
    email_to: list[str]
    timeout_seconds: float
    max_attempts: int

    @staticmethod
    def resolve_email_to(obj: NotificationChannel) -> list[str]:
        return obj.recipients


class ChannelCreatedOut(ChannelOut):
    secret: str | None = Field(None, description="Webhook signing secret: shown only in this answer.")

    @staticmethod
    def resolve_secret(obj: NotificationChannel) -> str | None:
        return getattr(obj, "shown_secret", None)


class RuleIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    kinds: list[AlertKind] = Field(default_factory=list, max_length=20)
    min_severity: AlertSeverity = AlertSeverity.WARNING
    zones: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    camera_tags: list[Tag] = Field(default_factory=list, max_length=20)
    channels: list[int] = Field(min_length=1, max_length=20)
    remind_after_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    notify_resolved: bool = True
    max_messages_per_hour: int = Field(30, ge=0, le=10_000)


class RuleOut(Schema):
    id: int
    name: str
    enabled: bool
    kinds: list[str]
    min_severity: str
    zones: list[uuid.UUID]
    camera_tags: list[str]
    channels: list[int]
    remind_after_minutes: int | None
    notify_resolved: bool
    max_messages_per_hour: int

    @staticmethod
    def resolve_zones(obj: AlertRule) -> list[uuid.UUID]:
        return [zone.pk for zone in obj.zones.all()]

    @staticmethod
    def resolve_channels(obj: AlertRule) -> list[int]:
        return [channel.pk for channel in obj.channels.all()]


class DeliveryOut(Schema):
    id: int
    alert_id: int | None
    rule_id: int | None
    channel_id: int
    event: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    response_status: int | None
    created_at: datetime
    sent_at: datetime | None


class DeliveryFilters(Schema):
    state: DeliveryState | None = None
    event: DeliveryEvent | None = None
    channel: int | None = None


def _caller(request: HttpRequest) -> str:
    return f"api:{request.auth.name}"  # type: ignore[attr-defined]


@router.get("/notifications/channels", response=list[ChannelOut], auth=AUTH, summary="List channels")
@paginate(CursorPage, ordering=("name",))
def channels_list(request: HttpRequest) -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.all()


@router.post(
    "/notifications/channels", response={201: ChannelCreatedOut}, auth=AUTH, summary="Create a channel (tested first)"
)
def channels_create(request: HttpRequest, payload: ChannelIn) -> Status[NotificationChannel]:
    fields = payload.dict(exclude={"verify", "email_to", "secret"})
    secret = payload.secret or (new_webhook_secret() if payload.kind == ChannelKind.WEBHOOK else "")
    channel = channel_create(
        verify=payload.verify,
        requested_by=_caller(request),
        email_to="\n".join(payload.email_to),
        secret=secret,
        **fields,
    )
    # A secret the API generated is shown once, in this answer; one the caller chose is not echoed.
    channel.shown_secret = secret if payload.kind == ChannelKind.WEBHOOK and payload.secret is None else None  # type: ignore[attr-defined]
    return Status(201, channel)


@router.post("/notifications/channels/{int:channel_id}/test", response=DeliveryOut, auth=AUTH, summary="Send a test")
def channels_test(request: HttpRequest, channel_id: int) -> NotificationDelivery:
    channel = get_object_or_404(NotificationChannel, pk=channel_id)
    return channel_send_test(channel=channel, requested_by=_caller(request))


@router.get("/notifications/rules", response=list[RuleOut], auth=AUTH, summary="List alert rules")
@paginate(CursorPage, ordering=("name",))
def rules_list(request: HttpRequest) -> QuerySet[AlertRule]:
    return AlertRule.objects.prefetch_related("zones", "channels")


@router.post("/notifications/rules", response={201: RuleOut}, auth=AUTH, summary="Create an alert rule")
def rules_create(request: HttpRequest, payload: RuleIn) -> Status[AlertRule]:
    fields = payload.dict(exclude={"zones", "channels"})
    fields["kinds"] = [str(kind) for kind in payload.kinds]
    rule = rule_create(zone_ids=payload.zones, channel_ids=payload.channels, **fields)
    return Status(201, AlertRule.objects.prefetch_related("zones", "channels").get(pk=rule.pk))


@router.delete("/notifications/rules/{int:rule_id}", response={204: None}, auth=AUTH, summary="Delete an alert rule")
def rules_delete(request: HttpRequest, rule_id: int) -> Status[None]:
    get_object_or_404(AlertRule, pk=rule_id).delete()
    return Status(204, None)


@router.get("/notifications/deliveries", response=list[DeliveryOut], auth=AUTH, summary="The delivery log")
@paginate(CursorPage, ordering=("-created_at", "-id"))
def deliveries_list(request: HttpRequest, filters: Query[DeliveryFilters]) -> QuerySet[NotificationDelivery]:
    queryset = NotificationDelivery.objects.all()
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.event:
        queryset = queryset.filter(event=filters.event)
    if filters.channel is not None:
        queryset = queryset.filter(channel_id=filters.channel)
    return queryset
