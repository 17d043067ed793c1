"""tests/traffic/test_api.py, run against the Citus cluster (see conftest.py)."""

from tests.traffic.test_api import *  # noqa: F403
