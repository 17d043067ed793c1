"""Traffic in the admin: counting lines and regions drawn over the camera's frame (with where objects were seen in
the last hour), their version history, and the traffic dashboard per camera or zone.

Thin: forms check through traffic.services.definitions (`line_check`, `region_check`) so a bad line is a form
error on its field, and saving calls the create/update services; nothing here writes a row itself. The drawing
is an inline SVG driven by traffic/static/traffic/geometry_editor.js (no CDN, no library).
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html_join

from cameras.models import Camera, Zone
from its_camera import admin_pages
from traffic.choices import InSide
from traffic.dashboards import dashboard_context
from traffic.models import CountingLine, CountingLineVersion, Region, RegionVersion
from traffic.selectors.definitions import camera_frame_size, recent_positions
from traffic.services.definitions import (
    line_check,
    line_close,
    line_create,
    line_update,
    region_check,
    region_close,
    region_create,
    region_update,
)

DASHBOARD_URL_NAME = "traffic_dashboard"
FRAME_URL_NAME = "traffic_camera_frame"
CAMERA_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"  # the drawing script puts the chosen camera's id here


def _apply_from_field() -> forms.DateTimeField:
    return forms.DateTimeField(
        required=False,
        label="Apply from",
        help_text="Edits apply from this moment onward (default: now); counts before it keep the old geometry. "
        "Recount an earlier range with `manage.py rollups rebuild`.",
    )


def _error_on_fields(form: forms.BaseForm, error: ValidationError, mapping: dict[str, str]) -> None:
    """Put each of the service's errors on the form field it names (a form-wide error otherwise)."""
    for field, field_messages in error.message_dict.items():
        target = mapping.get(field)
        form.add_error(target if target in form.fields else None, field_messages)


class CountingLineForm(forms.ModelForm):
    x1 = forms.FloatField(min_value=0, max_value=32767)
    y1 = forms.FloatField(min_value=0, max_value=32767)
    x2 = forms.FloatField(min_value=0, max_value=32767)
    y2 = forms.FloatField(min_value=0, max_value=32767)
    in_side = forms.ChoiceField(choices=InSide.choices, label="'In' side")
    apply_from = _apply_from_field()

    class Meta:
        model = CountingLine
        fields = ["camera", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["camera"].disabled = True
            current = self.instance.versions.filter(valid_until__isnull=True).first()
            if current:
                self.initial.update(x1=current.x1, y1=current.y1, x2=current.x2, y2=current.y2, in_side=current.in_side)

    def points(self) -> list[list[float]]:
        data = self.cleaned_data
        return [[data["x1"], data["y1"]], [data["x2"], data["y2"]]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            line_check(
                camera=data.get("camera"), name=data.get("name", ""), points=self.points(),
                in_side=data.get("in_side", ""), now=timezone.now(), line=self.instance if self.instance.pk else None,
            )  # fmt: skip
        except ValidationError as error:
            _error_on_fields(self, error, {"points": "x2", "camera": "camera", "name": "name", "in_side": "in_side"})
        return data


@admin.register(CountingLine)
class CountingLineAdmin(admin.ModelAdmin):
    form = CountingLineForm
    change_form_template = "admin/traffic/geometry_change_form.html"
    list_display = ["name", "camera", "geometry", "created_at", "closed_at"]
    list_filter = [("closed_at", admin.EmptyFieldListFilter), "camera__zone"]
    list_select_related = ["camera"]
    search_fields = ["name", "camera__name"]
    readonly_fields = ["version_history"]
    actions = ["close_lines"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CountingLine]:
        return super().get_queryset(request).prefetch_related("versions")

    @admin.display(description="in force")
    def geometry(self, obj: CountingLine) -> str:
        current = [v for v in obj.versions.all() if v.valid_until is None]
        if not current:
            return "closed"
        v = current[0]
        return f"({v.x1:g}, {v.y1:g}) → ({v.x2:g}, {v.y2:g}), in = {v.in_side}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # lines are closed, never deleted: their counts refer to them

    @admin.display(description="versions (each applies from its start until the next one)")
    def version_history(self, obj: CountingLine) -> str:
        if obj._state.adding:
            return "—"
        return format_html_join(
            "",
            "<div>{} → {}: ({}, {}) → ({}, {}), in = {}, frame {} x {}</div>",
            (
                (v.valid_from.isoformat(), v.valid_until.isoformat() if v.valid_until else "now", v.x1, v.y1, v.x2,
                 v.y2, v.in_side, v.frame_width, v.frame_height)
                for v in obj.versions.order_by("valid_from")
            ),
        )  # fmt: skip

    @admin.action(description="Close selected lines (stop counting now; counts are kept)")
    def close_lines(self, request: HttpRequest, queryset: QuerySet[CountingLine]) -> None:
        now = timezone.now()
        for line in queryset:
            line_close(line=line, now=now)
        self.message_user(request, f"Closed {queryset.count()} line(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: CountingLine, form: Any, change: bool) -> None:
        data = form.cleaned_data
        now = timezone.now()
        if change:
            current = obj.versions.filter(valid_until__isnull=True).first()
            changed = current is None or [current.x1, current.y1, current.x2, current.y2, current.in_side] != [
                data["x1"], data["y1"], data["x2"], data["y2"], data["in_side"]
            ]  # fmt: skip
            line_update(
                line=obj, now=now, name=data["name"], points=form.points() if changed else None,
                in_side=data["in_side"] if changed else None, valid_from=data.get("apply_from"),
            )  # fmt: skip
        else:
            created = line_create(
                camera=data["camera"], name=data["name"], points=form.points(), in_side=data["in_side"], now=now,
                valid_from=data.get("apply_from"),
            )  # fmt: skip
            obj.pk = created.pk

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        context.update(geometry_kind="line", frame_url=reverse(f"admin:{FRAME_URL_NAME}", args=[CAMERA_PLACEHOLDER]))
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name=DASHBOARD_URL_NAME),
            path("frame/<uuid:camera_id>/", self.admin_site.admin_view(self.frame_view), name=FRAME_URL_NAME),
        ]
        return [*extra, *super().get_urls()]

    def frame_view(self, request: HttpRequest, camera_id: Any) -> HttpResponse:
        """The camera's frame size, its lines and regions in force, and where objects were seen in the last hour:
        what the drawing form shows."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        camera = Camera.objects.filter(id=camera_id).first()
        if camera is None:
            return JsonResponse({"detail": "Unknown camera."}, status=404)
        now = timezone.now()
        width, height = camera_frame_size(camera=camera, now=now)
        return JsonResponse(
            {
                "width": width,
                "height": height,
                "positions": [[round(x, 1), round(y, 1)] for x, y, _ in recent_positions(camera_id=camera.id, now=now)],
                "lines": [
                    {"name": v.line.name, "points": [[v.x1, v.y1], [v.x2, v.y2]], "in_side": v.in_side}
                    for v in CountingLineVersion.objects.filter(
                        line__camera=camera, valid_until__isnull=True
                    ).select_related("line")
                ],
                "regions": [
                    {"name": v.region.name, "points": v.points}
                    for v in RegionVersion.objects.filter(
                        region__camera=camera, valid_until__isnull=True
                    ).select_related("region")
                ],
            }
        )

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        camera_id, zone_id = _uuid(request.GET.get("camera")), _uuid(request.GET.get("zone"))
        camera = Camera.objects.filter(id=camera_id).first() if camera_id else None
        zone = Zone.objects.filter(id=zone_id).first() if zone_id else None
        day = _day(request.GET.get("day"), default=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Traffic counts",
            "cameras": Camera.objects.order_by("name").only("id", "name")[:500],
            "zones": Zone.objects.order_by("name").only("id", "name")[:500],
            **dashboard_context(camera=camera, zone=zone, day=day),
        }
        return TemplateResponse(request, "admin/traffic/dashboard.html", context)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _day(value: str | None, *, default: datetime) -> datetime:
    try:
        parsed = datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=UTC) if value else default
    except ValueError:
        parsed = default
    return parsed.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class RegionForm(forms.ModelForm):
    points = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="[[x, y], ...] in image pixels, 3 to 32 vertices; click on the frame to add vertices.",
    )
    apply_from = _apply_from_field()

    class Meta:
        model = Region
        fields = ["camera", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["camera"].disabled = True
            current = self.instance.versions.filter(valid_until__isnull=True).first()
            if current:
                self.initial["points"] = json.dumps(current.points)

    def clean_points(self) -> Any:
        try:
            return json.loads(self.cleaned_data["points"])
        except ValueError as exc:
            raise ValidationError("Not JSON: give [[x, y], ...].") from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            region_check(
                camera=data.get("camera"), name=data.get("name", ""), points=data.get("points"), now=timezone.now(),
                region=self.instance if self.instance.pk else None,
            )  # fmt: skip
        except ValidationError as error:
            _error_on_fields(self, error, {"points": "points", "camera": "camera", "name": "name"})
        return data


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    form = RegionForm
    change_form_template = "admin/traffic/geometry_change_form.html"
    list_display = ["name", "camera", "created_at", "closed_at"]
    list_filter = [("closed_at", admin.EmptyFieldListFilter), "camera__zone"]
    list_select_related = ["camera"]
    search_fields = ["name", "camera__name"]
    readonly_fields = ["version_history"]
    actions = ["close_regions"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="versions (each applies from its start until the next one)")
    def version_history(self, obj: Region) -> str:
        if obj._state.adding:
            return "—"
        return format_html_join(
            "",
            "<div>{} → {}: {} (frame {} x {})</div>",
            (
                (v.valid_from.isoformat(), v.valid_until.isoformat() if v.valid_until else "now", v.points,
                 v.frame_width, v.frame_height)
                for v in obj.versions.order_by("valid_from")
            ),
        )  # fmt: skip

    @admin.action(description="Close selected regions (stop measuring now; counts are kept)")
    def close_regions(self, request: HttpRequest, queryset: QuerySet[Region]) -> None:
        now = timezone.now()
        for region in queryset:
            region_close(region=region, now=now)
        self.message_user(request, f"Closed {queryset.count()} region(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Region, form: Any, change: bool) -> None:
        data = form.cleaned_data
        now = timezone.now()
        if change:
            current = obj.versions.filter(valid_until__isnull=True).first()
            changed = current is None or current.points != data["points"]
            region_update(
                region=obj, now=now, name=data["name"], points=data["points"] if changed else None,
                valid_from=data.get("apply_from"),
            )  # fmt: skip
        else:
            created = region_create(
                camera=data["camera"], name=data["name"], points=data["points"], now=now,
                valid_from=data.get("apply_from"),
            )  # fmt: skip
            obj.pk = created.pk

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        context.update(geometry_kind="region", frame_url=reverse(f"admin:{FRAME_URL_NAME}", args=[CAMERA_PLACEHOLDER]))
        return super().render_change_form(request, context, *args, **kwargs)


admin_pages.register(
    title="Traffic counts",
    url_name=f"admin:{DASHBOARD_URL_NAME}",
    description="Per camera or zone: crossings by class and direction over the day, peak hour, lines on the frame.",
)
