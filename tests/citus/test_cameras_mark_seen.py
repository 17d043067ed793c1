"""tests/cameras/test_mark_seen.py, run against the Citus cluster (see conftest.py)."""

from tests.cameras.test_mark_seen import *  # noqa: F403
