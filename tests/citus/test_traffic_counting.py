"""tests/traffic/test_counting.py, run against the Citus cluster (see conftest.py)."""

from tests.traffic.test_counting import *  # noqa: F403
