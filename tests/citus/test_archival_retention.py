"""tests/archival/test_retention.py, run against the Citus cluster (see conftest.py)."""

from tests.archival.test_retention import *  # noqa: F403
