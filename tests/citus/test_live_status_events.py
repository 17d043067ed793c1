"""tests/live/test_status_events.py, run against the Citus cluster (see conftest.py)."""

from tests.live.test_status_events import *  # noqa: F403
