from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class ItsCameraConfig(AppConfig):
    name = "its_camera"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from its_camera import jobs  # noqa: F401 - registers the jobs' scrape-time metrics
        from its_camera.db.migration_session import apply_migration_limits, reset_migration_limits
        from its_camera.logs import connect_signals

        connect_signals()  # the request id: cleared after each request, carried into the tasks a request queues

        pre_migrate.connect(apply_migration_limits, dispatch_uid="its_camera.migration_limits")
        post_migrate.connect(reset_migration_limits, dispatch_uid="its_camera.migration_limits_reset")
