"""tests/traffic/test_admin.py, run against the Citus cluster (see conftest.py)."""

from tests.traffic.test_admin import *  # noqa: F403
