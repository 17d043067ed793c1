from django.apps import AppConfig

from its_camera.db.citus import register_reference_table


class CamerasConfig(AppConfig):
    name = "cameras"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cameras import job_alerts

        job_alerts.connect()
        # Citus (docs/scaling.md): small, joined by everything, so copied to every node; zones first, cameras
        # reference them. Alerts stay on the coordinator (system alerts have no camera to shard by).
        register_reference_table("zones")
        register_reference_table("cameras")
