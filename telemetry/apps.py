import gc

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "telemetry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from telemetry import monitoring, observability  # noqa: F401 - register the readiness check and metrics

        # Everything imported at start-up lives as long as the process: moved out of the cyclic GC's
        # generations, it is not rescanned by the full collections that a 2,000-frame batch (tens of
        # thousands of objects) can trigger, which measured as 100+ ms pauses in batch p99.
        gc.freeze()
