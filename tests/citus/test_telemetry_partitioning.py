"""tests/telemetry/test_partitioning.py, run against the Citus cluster (see conftest.py)."""

from tests.telemetry.test_partitioning import *  # noqa: F403
