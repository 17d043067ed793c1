"""tests/archival/test_jobs_and_partitions.py, run against the Citus cluster (see conftest.py)."""

from tests.archival.test_jobs_and_partitions import *  # noqa: F403
