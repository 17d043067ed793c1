from django.apps import AppConfig


class ArchivalConfig(AppConfig):
    name = "archival"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from archival import readiness  # noqa: F401 - registers the "partitions" readiness check
        from archival.selectors.retention import retention_floors
        from telemetry.services.partitions import register_partition_floor

        register_partition_floor(retention_floors)

        from archival.storage import archive_storage
        from telemetry.selectors.cold import register_cold_storage

        register_cold_storage(archive_storage)
