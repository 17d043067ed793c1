"""tests/telemetry/test_realtime_status_view.py, run against the Citus cluster (see conftest.py)."""

from tests.telemetry.test_realtime_status_view import *  # noqa: F403
