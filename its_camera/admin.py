from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from its_camera import operations_panels  # noqa: F401 - registers the admin home's beat jobs panel
from its_camera.choices import ApiScope
from its_camera.jobs import job_statuses
from its_camera.models import ApiKey, JobRun
from its_camera.services.api_keys import api_key_issue, api_key_revoke

admin.site.site_header = "ITS Camera Platform"
admin.site.site_title = "ITS Camera Platform"
admin.site.index_title = "Operations"


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "scope_list", "created_by", "created_at", "last_used_at", "is_active"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["created_by"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: ApiKey) -> bool:
        return not obj.is_revoked

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # The secret is minted once; an existing key's scopes are fixed (revoke and create anew).
        if obj is not None:
            return [*self.readonly_fields, "name", "scopes"]
        return list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        obj.created_by = request.user  # type: ignore[assignment]
        raw_key = api_key_issue(api_key=obj)
        messages.warning(request, f"API key for “{obj.name}”: {raw_key} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    """Every beat job's history (its_camera.jobs), with each job's status now above the list."""

    change_list_template = "admin/its_camera/jobrun_change_list.html"
    list_display = ["started_at", "job", "outcome", "duration", "rows", "summary", "error"]
    list_filter = ["job", "outcome"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: JobRun) -> str:
        return "—" if obj.duration_ms is None else f"{obj.duration_ms / 1000:.1f} s"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(request, {**(extra_context or {}), "job_statuses": job_statuses()})
