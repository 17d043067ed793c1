"""Operators' admin for notification channels, alert rules and the delivery log. Thin: services do the work."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from cameras.choices import AlertKind
from its_camera import admin_pages
from notifications.choices import DeliveryState
from notifications.models import AlertRule, NotificationChannel, NotificationDelivery
from notifications.services.channels import channel_verify
from notifications.services.deliveries import channel_send_test, delivery_retry


class NotificationChannelForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Webhook only: http(s) URL that receives a POST.",
    )
    verify = forms.BooleanField(
        required=False,
        initial=True,
        label="Send a test message before saving",
        help_text="The channel is saved only if the message goes through (the error is shown otherwise).",
    )

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "enabled", "url", "secret", "email_to", "timeout_seconds", "max_attempts"]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # copies the cleaned fields onto the instance and runs the model's clean()
        if self.cleaned_data.get("verify") and not self.errors:
            try:
                channel_verify(channel=self.instance, requested_by=getattr(self, "requested_by", "admin"))
            except ValidationError as error:
                for field, field_errors in error.message_dict.items():
                    self.add_error(field if field in self.fields else None, field_errors)


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    fields = ["created_at", "event", "state", "attempts", "last_error"]
    readonly_fields = ["created_at", "event", "state", "attempts", "last_error"]
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationDelivery]:
        # The last few only: the delivery log holds the rest.
        ids = list(super().get_queryset(request).order_by("-created_at", "-id").values_list("pk", flat=True)[:10])
        return super().get_queryset(request).filter(pk__in=ids)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ["name", "kind", "target", "enabled", "max_attempts"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "url", "email_to"]
    actions = ["send_test"]
    inlines = [DeliveryInline]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.requested_by = request.user.get_username()  # type: ignore[attr-defined]
        return form

    @admin.action(description="Send a test message")
    def send_test(self, request: HttpRequest, queryset: QuerySet[NotificationChannel]) -> None:
        for channel in queryset:
            delivery = channel_send_test(channel=channel, requested_by=request.user.get_username())
            if delivery.state == DeliveryState.SENT:
                self.message_user(request, f"Test message sent through “{channel.name}”.", messages.SUCCESS)
            else:
                self.message_user(request, f"“{channel.name}”: {delivery.last_error}", messages.ERROR)


class AlertRuleForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=AlertKind.choices, required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: any."
    )

    class Meta:
        model = AlertRule
        fields = [
            "name", "enabled", "kinds", "min_severity", "zones", "camera_tags", "channels",
            "remind_after_minutes", "notify_resolved", "max_messages_per_hour",
        ]  # fmt: skip


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = ["name", "enabled", "min_severity", "kind_list", "remind_after_minutes", "max_messages_per_hour"]
    list_filter = ["enabled", "min_severity"]
    search_fields = ["name"]
    filter_horizontal = ["zones", "channels"]

    @admin.display(description="kinds")
    def kind_list(self, obj: AlertRule) -> str:
        return ", ".join(obj.kinds) or "any"


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: every message, its attempts and its last error. Read-only; failed ones can be retried."""

    list_display = ["created_at", "event", "state_badge", "channel", "rule", "alert_link", "attempts", "last_error"]
    list_filter = ["state", "event", "channel"]
    list_select_related = ["channel", "rule", "alert"]
    search_fields = ["last_error"]
    date_hierarchy = None
    show_full_result_count = False
    actions = ["retry"]
    readonly_fields = [
        "alert", "rule", "channel", "event", "state", "payload", "attempts", "next_attempt_at", "last_error",
        "response_status", "requested_by", "created_at", "sent_at",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: NotificationDelivery) -> str:
        colour = {"sent": "#2e7d32", "failed": "#c62828", "retrying": "#b26a00", "throttled": "#6a1b9a"}
        return format_html('<strong style="color: {}">{}</strong>', colour.get(obj.state, "inherit"), obj.state)

    @admin.display(description="alert")
    def alert_link(self, obj: NotificationDelivery) -> str:
        return str(obj.alert) if obj.alert_id else "—"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Retry the selected failed or throttled deliveries")
    def retry(self, request: HttpRequest, queryset: QuerySet[NotificationDelivery]) -> None:
        retried = sum(delivery_retry(delivery=delivery) for delivery in queryset)
        self.message_user(request, f"Queued {retried} deliver(ies) again.", messages.SUCCESS)


admin_pages.register(
    title="Notification deliveries",
    url_name="admin:notifications_notificationdelivery_changelist",
    description="Every alert message sent, retried, failed or throttled, per channel.",
)
