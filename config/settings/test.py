"""The test suite: real PostgreSQL and Redis, migrations applied from zero on every run."""

from .base import *  # noqa: F403
from .base import databases_for

DEBUG = False
DATABASES = databases_for("test")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user fixtures
CELERY_TASK_ALWAYS_EAGER = False

# Zero-downtime migration rules are checked by tests/its_camera/test_migrations.py.
INSTALLED_APPS = [*INSTALLED_APPS, "django_migration_linter"]
MIGRATION_LINTER_OPTIONS = {
    "sql_analyser": "postgresql",
    "no_cache": True,
    # 0009 drops frame_metadata.detections, which no code has read or written since 0008 (see its docstring).
    # 0011 drops indexes of a partitioned table, which PostgreSQL cannot do CONCURRENTLY (see its docstring).
    "ignore_name": ["0009_drop_frame_detections_copy", "0011_detection_lookups_leave_hot_partitions"],
}
# Test clients (Django's, schemathesis's in-process ASGI client) call the application as "testserver"; the fuzz
# test loads the OpenAPI document at collection, before pytest-django adds it.
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
