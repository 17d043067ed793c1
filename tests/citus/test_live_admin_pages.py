"""tests/live/test_admin_pages.py, run against the Citus cluster (see conftest.py)."""

from tests.live.test_admin_pages import *  # noqa: F403
