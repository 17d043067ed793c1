"""tests/analytics/test_analytics_api.py, run against the Citus cluster (see conftest.py)."""

from tests.analytics.test_analytics_api import *  # noqa: F403
