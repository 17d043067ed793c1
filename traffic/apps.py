from django.apps import AppConfig


class TrafficConfig(AppConfig):
    name = "traffic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Telemetry owns the rollup refresh, the simulator and the ingest dashboard, and imports nothing of
        # traffic: traffic hooks into each of them here.
        from telemetry.admin_dashboards import register_dashboard_panel
        from telemetry.services.rollups import register_rollup_window_hook
        from telemetry.simulation import register_scene
        from traffic.dashboards import objects_beside_detections_panel
        from traffic.services.counting import traffic_refresh_window
        from traffic.simulation import TrafficScene

        register_rollup_window_hook("traffic", traffic_refresh_window)
        register_scene("traffic", TrafficScene.for_cameras)
        register_dashboard_panel("traffic", objects_beside_detections_panel)
