from django.apps import AppConfig


class ArchivalConfig(AppConfig):
    name = "archival"
    default_auto_field = "django.db.models.BigAutoField"
