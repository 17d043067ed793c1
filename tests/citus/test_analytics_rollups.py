"""tests/analytics/test_rollups.py, run against the Citus cluster (see conftest.py)."""

from tests.analytics.test_rollups import *  # noqa: F403
