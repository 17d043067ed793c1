"""tests/cameras/test_api_cameras.py, run against the Citus cluster (see conftest.py)."""

from tests.cameras.test_api_cameras import *  # noqa: F403
