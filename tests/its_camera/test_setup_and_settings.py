"""The platform starts as a new user would start it: migrations from zero, prod checks, first-run set-up."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from config.celery import app as celery_app
from its_camera.models import ApiKey

PROJECT_DIR = Path(settings.BASE_DIR)


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


PROD = {"DJANGO_SETTINGS_MODULE": "config.settings.prod", "ALLOWED_HOSTS": "its.example.org"}
STRONG_SECRET = "x7Lq-" + "k2Vw9Zp4Rt8Yb3Nc6Md1Fg5Hj0" * 2


def test_prod_settings_pass_check_deploy():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PROD, SECRET_KEY=STRONG_SECRET)
    assert result.returncode == 0, result.stderr


def test_prod_settings_refuse_to_start_without_secret_key():
    result = run_manage("check", **PROD)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_prod_settings_refuse_to_start_with_debug_on():
    result = run_manage("check", **PROD, SECRET_KEY=STRONG_SECRET, DEBUG="1")
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


@pytest.mark.parametrize(("environment", "sizes"), [("production", (50, 100)), ("staging", (20, 40))])
def test_pool_sizes_follow_the_environment(environment, sizes):
    code = "from django.conf import settings; p = settings.DATABASES['default']['OPTIONS']['pool']; "
    code += "print(p['min_size'], p['max_size'])"
    result = run_manage(
        "shell", "--no-imports", "-c", code, **PROD, SECRET_KEY=STRONG_SECRET, DEPLOY_ENVIRONMENT=environment
    )
    assert result.returncode == 0, result.stderr
    assert tuple(map(int, result.stdout.strip().splitlines()[-1].split())) == sizes


def test_database_settings_carry_pool_application_name_and_timeouts():
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "psqlextra.backend"
    options = database["OPTIONS"]
    assert options["application_name"] == "its_camera_ai"
    assert options["connect_timeout"] > 0
    assert "statement_timeout" in options["options"]
    assert options["pool"]["max_size"] >= options["pool"]["min_size"]


@pytest.mark.django_db
def test_the_session_really_uses_these_settings():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name'), current_setting('statement_timeout')")
        application_name, statement_timeout = cursor.fetchone()
    assert application_name == "its_camera_ai"
    assert statement_timeout != "0"


@pytest.mark.django_db
def test_every_migration_on_disk_is_applied_from_zero():
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_no_model_change_lacks_a_migration():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_celery_is_json_only_acks_late_and_uses_the_database_scheduler():
    conf = celery_app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert conf.broker_url == settings.REDIS_URL


def test_celery_broker_is_reachable():
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.connected


@pytest.mark.django_db
def test_setup_platform_creates_admin_and_demo_key_once(tmp_path, django_user_model):
    credentials_file = tmp_path / "credentials.json"

    call_command("setup_platform", "--credentials-file", str(credentials_file))
    call_command("setup_platform", "--credentials-file", str(credentials_file))

    credentials = json.loads(credentials_file.read_text())
    assert django_user_model.objects.filter(is_superuser=True).count() == 1
    admin = django_user_model.objects.get(username=credentials["admin_username"])
    assert admin.check_password(credentials["admin_password"])
    assert ApiKey.objects.count() == 1
    assert oct(credentials_file.stat().st_mode & 0o777) == "0o600"
