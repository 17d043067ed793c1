from django.apps import AppConfig


class ItsCameraConfig(AppConfig):
    name = "its_camera"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"
