"""tests/telemetry/test_admin.py, run against the Citus cluster (see conftest.py)."""

from tests.telemetry.test_admin import *  # noqa: F403
