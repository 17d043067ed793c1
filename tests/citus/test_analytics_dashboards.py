"""tests/analytics/test_dashboards.py, run against the Citus cluster (see conftest.py)."""

from tests.analytics.test_dashboards import *  # noqa: F403
