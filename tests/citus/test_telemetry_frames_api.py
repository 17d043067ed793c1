"""tests/telemetry/test_frames_api.py, run against the Citus cluster (see conftest.py)."""

from tests.telemetry.test_frames_api import *  # noqa: F403
