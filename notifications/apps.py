from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The cameras app raises and resolves alerts; it knows nothing of notifications (dependencies point one
        # way): we register with its alert services instead.
        from cameras.services.alerts import register_alert_listener
        from notifications.services.deliveries import deliveries_for_alert_change

        register_alert_listener(deliveries_for_alert_change)
