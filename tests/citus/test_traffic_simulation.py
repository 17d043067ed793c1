"""tests/traffic/test_simulation.py, run against the Citus cluster (see conftest.py)."""

from tests.traffic.test_simulation import *  # noqa: F403
