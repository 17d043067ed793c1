"""tests/cameras/test_offline_alerts.py, run against the Citus cluster (see conftest.py)."""

from tests.cameras.test_offline_alerts import *  # noqa: F403
