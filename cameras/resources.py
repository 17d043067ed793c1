"""Cameras and zones as rows of a CSV or XLSX file (django-import-export): what the admin's Import and Export
buttons and `cameras_import` read and write.

A file names zones by name, tags as a comma-separated list and config as JSON. Rows are matched on `name`: an
existing camera or zone is updated, a new one created. Every row is validated like a form (field ranges,
constraints, an unknown zone named in the error) and a file with any bad row writes nothing (one transaction,
rolled back on a validation error too). Stream credentials are masked on export; a masked value imported back
keeps the stored secret.
"""

from typing import Any

from import_export import fields, resources, widgets

from cameras.credentials import config_restore_masked, mask_config
from cameras.models import Alert, Camera, Zone
from cameras.services.cameras import camera_tags_clean

MAX_IMPORT_ROWS = 10_000


class ZoneByNameWidget(widgets.ForeignKeyWidget):
    def __init__(self) -> None:
        super().__init__(Zone, field="name")

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Zone | None:
        if value in (None, ""):
            return None
        try:
            return super().clean(str(value).strip(), row, **kwargs)
        except Zone.DoesNotExist:
            raise ValueError(f"Unknown zone {str(value)[:100]!r} (create it first, or import zones first).") from None


class TagsWidget(widgets.Widget):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> list[str]:
        if value in (None, ""):
            return []
        return camera_tags_clean(part for part in str(value).split(",") if part.strip())

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return ",".join(value or [])


class ConfigWidget(widgets.JSONWidget):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> dict[str, Any]:
        if value in (None, ""):
            return {}
        config = super().clean(value, row, **kwargs)
        if not isinstance(config, dict):
            raise ValueError("config must be a JSON object.")
        return config

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return super().render(mask_config(value or {}), obj, **kwargs) or "{}"


class ZoneResource(resources.ModelResource):
    # An empty cell is "" (the column is NOT NULL), not None.
    description = fields.Field(
        attribute="description", column_name="description", widget=widgets.CharWidget(allow_blank=True)
    )

    class Meta:
        model = Zone
        import_id_fields = ("name",)
        fields = (
            "name", "description", "min_latitude", "min_longitude", "max_latitude", "max_longitude",
            "center_latitude", "center_longitude",
        )  # fmt: skip
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class CameraResource(resources.ModelResource):
    zone = fields.Field(attribute="zone", column_name="zone", widget=ZoneByNameWidget())
    tags = fields.Field(attribute="tags", column_name="tags", widget=TagsWidget())
    config = fields.Field(attribute="config", column_name="config", widget=ConfigWidget())
    location = fields.Field(attribute="location", column_name="location", widget=widgets.CharWidget(allow_blank=True))

    class Meta:
        model = Camera
        import_id_fields = ("name",)
        fields = ("name", "status", "is_active", "location", "latitude", "longitude", "zone", "tags", "config")
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("zone")

    def import_instance(self, instance: Camera, row: Any, **kwargs: Any) -> None:
        stored = dict(instance.config) if instance.pk else {}
        super().import_instance(instance, row, **kwargs)
        if instance.pk:  # a masked credential in the file means "keep the one stored"
            instance.config = config_restore_masked(instance.config, stored)


class AlertResource(resources.ModelResource):
    """Alerts for export only (the admin's Export button on the filtered alert list)."""

    camera = fields.Field(attribute="camera__name", column_name="camera")

    class Meta:
        model = Alert
        fields = (
            "id", "kind", "subject", "severity", "state", "camera", "message", "details", "opened_at",
            "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
        )  # fmt: skip
        export_order = fields

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("camera")
