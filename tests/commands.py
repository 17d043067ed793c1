"""Run `manage.py` in a subprocess, against another database than the test database (a scratch
cluster, a replica pair), with the test settings."""

import os
import subprocess
import sys

from django.conf import settings


def manage(*args: str, **env: str) -> str:
    """Run a management command with `env` added to the environment; fails the test if it fails."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
