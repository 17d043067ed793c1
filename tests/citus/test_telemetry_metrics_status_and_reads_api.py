"""tests/telemetry/test_metrics_status_and_reads_api.py, run against the Citus cluster (see conftest.py)."""

from tests.telemetry.test_metrics_status_and_reads_api import *  # noqa: F403
