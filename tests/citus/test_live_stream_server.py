"""tests/live/test_stream_server.py, run against the Citus cluster (see conftest.py)."""

from tests.live.test_stream_server import *  # noqa: F403
