"""Zero-downtime migration rules, checked on every test run (SPEC §7).

- django-migration-linter reads each migration's SQL: a non-concurrent CREATE INDEX on an existing table,
  NOT NULL without a default, dropped or renamed columns, or a data migration without a reverse fail here.
- Every migration has a working backward path: migrate forward, back to zero, forward again.
- Migrations run with a short lock_timeout, so they fail fast instead of queueing behind live traffic.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

OUR_APPS = ["its_camera", "cameras", "telemetry", "archival"]
PROJECT_DIR = Path(settings.BASE_DIR)


@pytest.mark.django_db
def test_migrations_pass_the_zero_downtime_linter(capsys):
    try:
        call_command("lintmigrations", include_apps=OUR_APPS, warnings_as_errors=[])
    except SystemExit as exit_:
        pytest.fail(f"unsafe migration(s):\n{capsys.readouterr().out}", pytrace=exit_.code is None)
    assert "Erroneous migrations: 0/" in capsys.readouterr().out


@pytest.mark.django_db
def test_migrate_sets_a_short_lock_timeout_and_restores_it_after():
    from its_camera.db.migration_session import apply_migration_limits, reset_migration_limits

    apply_migration_limits(using="default")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchone()[0] == f"{settings.MIGRATION_LOCK_TIMEOUT_MS // 1000}s"
    reset_migration_limits(using="default")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchone()[0] == "0"


@pytest.fixture
def scratch_database_url():
    """A database of its own: migrating backwards must not disturb the test database."""
    params = connection.get_connection_params()
    params.pop("options", None)
    name = f"{connection.settings_dict['NAME']}_migrations"
    admin = {**params, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    host = str(params.get("host") or "127.0.0.1").replace("/", "%2F")
    port = f":{params['port']}" if params.get("port") else ""
    yield f"postgres://{params.get('user', 'postgres')}@{host}{port}/{name}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str, *args: str) -> None:
    environment = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"migrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def test_every_migration_goes_forward_back_and_forward_again(scratch_database_url):
    migrate(scratch_database_url)
    for app in reversed(OUR_APPS):  # dependents first
        migrate(scratch_database_url, app, "zero")
    migrate(scratch_database_url)
