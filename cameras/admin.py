"""Operators' admin for zones, cameras and alerts, and the fleet status page.

Changelists load everything a row shows in a fixed number of queries (zone joined, connection status
computed from `last_seen_at` in Python, counts annotated), so a page costs the same for 5 rows or 500.
Stream credentials in `config` are shown masked and survive a save of the masked form.
"""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportMixin, ImportExportMixin

from cameras import operations_panels  # noqa: F401 - registers the admin home's fleet and alert panels
from cameras.choices import ACTIVE_ALERT_STATES, AlertState, CameraStatus, ConnectionStatus
from cameras.credentials import config_restore_masked, mask_config
from cameras.exceptions import ConflictError
from cameras.models import Alert, Camera, Zone
from cameras.resources import AlertResource, CameraResource, ZoneResource
from cameras.selectors.cameras import connection_status_at, connection_status_filter, fleet_status_by_zone
from cameras.services.alerts import alert_acknowledge, alert_resolve_one
from cameras.services.cameras import (
    camera_bulk_add_tag,
    camera_bulk_move_to_zone,
    camera_bulk_set_active,
    camera_bulk_set_status,
)
from cameras.services.zones import zone_delete, zone_delete_refusal
from its_camera import limits

# --- Cameras ----------------------------------------------------------------------------------


def camera_page_url(camera_id: Any) -> str | None:
    """The camera's page (charts, completeness, alerts, frames), served by telemetry: linked by URL name, so
    cameras imports nothing from telemetry (and shows no link if telemetry is not installed)."""
    try:
        return reverse("operations-camera", args=[camera_id])
    except NoReverseMatch:
        return None


class ConnectionStatusFilter(admin.SimpleListFilter):
    title = "connection"
    parameter_name = "connection"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in ConnectionStatus.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Camera]) -> QuerySet[Camera]:
        if self.value() in ConnectionStatus.values:
            return queryset.filter(connection_status_filter(str(self.value()), now=timezone.now()))
        return queryset


class CameraAdminForm(forms.ModelForm):
    """Shows `config` with credentials masked; placeholders left as they are keep the stored secrets."""

    class Meta:
        model = Camera
        fields = ["name", "status", "is_active", "location", "latitude", "longitude", "zone", "config", "tags"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = mask_config(self.instance.config)
        self.fields["config"].help_text = (
            "Stream URL, resolution, fps, model thresholds. Credentials show as ******** and are kept "
            "as stored unless you type new ones."
        )

    def clean_config(self) -> Any:
        config = self.cleaned_data.get("config")
        if not isinstance(config, dict):
            raise forms.ValidationError("The config must be a JSON object.")
        stored = Camera.objects.filter(pk=self.instance.pk).values_list("config", flat=True).first() or {}
        try:
            limits.json_check(
                config,
                max_depth=settings.CAMERA_CONFIG_MAX_DEPTH,
                max_bytes=settings.CAMERA_CONFIG_MAX_BYTES,
                what="The config",
            )
            return config_restore_masked(config, stored)
        except limits.JsonTooLarge as exc:
            raise forms.ValidationError(str(exc)) from None
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class MoveToZoneForm(forms.Form):
    zone = forms.ModelChoiceField(queryset=Zone.objects.order_by("name"), required=False, empty_label="(no zone)")


class AddTagForm(forms.Form):
    tag = forms.CharField(max_length=64, strip=True)


@admin.register(Camera)
class CameraAdmin(ImportExportMixin, admin.ModelAdmin):
    # Import (CSV/XLSX): upload, a dry-run preview with every row's changes and errors, confirm; a file with any
    # bad row writes nothing. Export: the filtered list (credentials masked). See cameras/resources.py.
    resource_classes = [CameraResource]
    change_list_template = "admin/cameras/camera/change_list.html"
    form = CameraAdminForm
    list_display = [
        "name",
        "status",
        "connection",
        "is_active",
        "zone",
        "location",
        "tag_list",
        "last_seen_at",
        "last_fps",
        "page_link",
    ]
    list_filter = ["status", ConnectionStatusFilter, "zone", "is_active"]
    list_select_related = ["zone"]
    search_fields = ["name", "location"]
    readonly_fields = ["id", "last_seen_at", "last_fps", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "status", "is_active", "zone", "tags"]}),
        ("Position", {"fields": ["location", "latitude", "longitude"]}),
        ("Configuration", {"fields": ["config"]}),
        ("Seen", {"fields": ["last_seen_at", "last_fps", "created_at", "updated_at"]}),
    ]
    actions = ["activate", "deactivate", "set_maintenance", "move_to_zone", "add_tag"]
    list_per_page = 100
    show_full_result_count = False  # no second COUNT(*) over the whole table on every page

    def get_urls(self) -> list[URLPattern]:
        fleet = path(
            "fleet-status/", self.admin_site.admin_view(self.fleet_status_view), name="cameras_camera_fleet_status"
        )
        return [fleet, *super().get_urls()]

    @admin.display(description="page")
    def page_link(self, obj: Camera) -> str:
        url = camera_page_url(obj.pk)
        return format_html('<a href="{}">charts</a>', url) if url else "—"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = {**(extra_context or {}), "camera_page_url": camera_page_url(object_id)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="connection")
    def connection(self, obj: Camera) -> str:
        status = connection_status_at(obj.last_seen_at, now=timezone.now())
        colour = {"streaming": "#2e7d32", "recent": "#f9a825", "stale": "#c62828"}[status]
        return format_html('<span style="color:{}">● {}</span>', colour, status)

    @admin.display(description="tags")
    def tag_list(self, obj: Camera) -> str:
        return ", ".join(obj.tags)

    # Bulk actions: each one UPDATE through the services, whatever the selection size.

    def _selected_ids(self, queryset: QuerySet[Camera]) -> list[Any]:
        return list(queryset.values_list("pk", flat=True))

    @admin.action(description="Activate selected cameras")
    def activate(self, request: HttpRequest, queryset: QuerySet[Camera]) -> None:
        changed = camera_bulk_set_active(camera_ids=self._selected_ids(queryset), is_active=True)
        self.message_user(request, f"Activated {changed} camera(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected cameras")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Camera]) -> None:
        changed = camera_bulk_set_active(camera_ids=self._selected_ids(queryset), is_active=False)
        self.message_user(request, f"Deactivated {changed} camera(s).", messages.SUCCESS)

    @admin.action(description="Set selected cameras to maintenance")
    def set_maintenance(self, request: HttpRequest, queryset: QuerySet[Camera]) -> None:
        changed = camera_bulk_set_status(camera_ids=self._selected_ids(queryset), status=CameraStatus.MAINTENANCE)
        self.message_user(request, f"Set {changed} camera(s) to maintenance.", messages.SUCCESS)

    def _intermediate_page(
        self, request: HttpRequest, queryset: QuerySet[Camera], *, action: str, title: str, form: forms.Form
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "action": action,
            "cameras": queryset.order_by("name")[:20],
            "camera_count": queryset.count(),
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/cameras/camera/bulk_action_form.html", context)

    @admin.action(description="Move selected cameras to a zone…")
    def move_to_zone(self, request: HttpRequest, queryset: QuerySet[Camera]) -> TemplateResponse | None:
        form = MoveToZoneForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            zone = form.cleaned_data["zone"]
            changed = camera_bulk_move_to_zone(camera_ids=self._selected_ids(queryset), zone=zone)
            self.message_user(request, f"Moved {changed} camera(s) to {zone or '(no zone)'}.", messages.SUCCESS)
            return None
        return self._intermediate_page(
            request, queryset, action="move_to_zone", title="Move cameras to a zone", form=form
        )

    @admin.action(description="Add a tag to selected cameras…")
    def add_tag(self, request: HttpRequest, queryset: QuerySet[Camera]) -> TemplateResponse | None:
        form = AddTagForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            tag = form.cleaned_data["tag"]
            changed = camera_bulk_add_tag(camera_ids=self._selected_ids(queryset), tag=tag)
            self.message_user(request, f"Tagged {changed} camera(s) with “{tag}”.", messages.SUCCESS)
            return None
        return self._intermediate_page(request, queryset, action="add_tag", title="Add a tag to cameras", form=form)

    def fleet_status_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = fleet_status_by_zone()
        totals = {
            "streaming": sum(row.streaming for row in rows),
            "recent": sum(row.recent for row in rows),
            "stale": sum(row.stale for row in rows),
            "open_alerts": sum(row.open_alerts for row in rows),
        }
        totals["total"] = totals["streaming"] + totals["recent"] + totals["stale"]
        context = {
            **self.admin_site.each_context(request),
            "title": "Fleet status",
            "opts": self.model._meta,
            "rows": rows,
            "totals": totals,
            "changelist_url": reverse("admin:cameras_camera_changelist"),
            "alerts_url": reverse("admin:cameras_alert_changelist"),
            "generated_at": timezone.now(),
        }
        return TemplateResponse(request, "admin/cameras/fleet_status.html", context)


# --- Zones ------------------------------------------------------------------------------------


class CameraInline(admin.TabularInline):
    model = Camera
    fields = ["name", "status", "is_active", "location", "last_seen_at"]
    readonly_fields = ["last_seen_at"]
    extra = 0
    show_change_link = True
    ordering = ["name"]


@admin.register(Zone)
class ZoneAdmin(ImportExportMixin, admin.ModelAdmin):
    resource_classes = [ZoneResource]
    list_display = ["name", "camera_count", "active_camera_count", "description"]
    search_fields = ["name", "description"]
    inlines = [CameraInline]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Zone]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                camera_total=Count("cameras"),
                camera_active=Count("cameras", filter=Q(cameras__is_active=True)),
            )
        )

    @admin.display(description="cameras", ordering="camera_total")
    def camera_count(self, obj: Zone) -> int:
        return obj.camera_total  # type: ignore[attr-defined]

    @admin.display(description="active", ordering="camera_active")
    def active_camera_count(self, obj: Zone) -> int:
        return obj.camera_active  # type: ignore[attr-defined]

    # Deleting goes through the service, as the API does: a zone with cameras is refused (Django's "cannot
    # delete" page lists why), never emptied by clearing its cameras' zone.
    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[Any]]:
        deleted, counts, permissions_needed, protected = super().get_deleted_objects(objs, request)
        refusals = [refusal for zone in objs if (refusal := zone_delete_refusal(zone=zone))]
        return deleted, counts, permissions_needed, [*protected, *refusals]

    def delete_model(self, request: HttpRequest, obj: Zone) -> None:
        zone_delete(zone=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Zone]) -> None:
        with transaction.atomic():
            for zone in queryset:
                zone_delete(zone=zone)


# --- Alerts -----------------------------------------------------------------------------------


@admin.register(Alert)
class AlertAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [AlertResource]
    list_display = ["id", "kind", "subject", "camera", "severity", "state", "short_message", "opened_at", "updated_at"]
    list_filter = ["state", "kind", "severity"]
    list_select_related = ["camera"]
    search_fields = ["message", "subject", "camera__name"]
    readonly_fields = [
        "camera",
        "kind",
        "subject",
        "severity",
        "state",
        "message",
        "details",
        "opened_at",
        "updated_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
    ]
    actions = ["acknowledge", "resolve"]
    list_per_page = 100
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by the platform, not typed in

    @admin.display(description="message")
    def short_message(self, obj: Alert) -> str:
        return obj.message if len(obj.message) <= 100 else obj.message[:99] + "…"

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        acknowledged = 0
        for alert in queryset.filter(state=AlertState.OPEN):
            try:
                alert_acknowledge(alert=alert, acknowledged_by=request.user.get_username())
                acknowledged += 1
            except ConflictError:  # resolved meanwhile
                continue
        self.message_user(request, f"Acknowledged {acknowledged} alert(s).", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        resolved = 0
        for alert in queryset.filter(state__in=ACTIVE_ALERT_STATES):
            alert_resolve_one(alert=alert, resolved_by=request.user.get_username())
            resolved += 1
        self.message_user(request, f"Resolved {resolved} alert(s).", messages.SUCCESS)
