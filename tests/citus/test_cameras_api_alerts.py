"""tests/cameras/test_api_alerts.py, run against the Citus cluster (see conftest.py)."""

from tests.cameras.test_api_alerts import *  # noqa: F403
