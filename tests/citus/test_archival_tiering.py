"""tests/archival/test_tiering.py, run against the Citus cluster (see conftest.py): seal, tier to cold, the one
timeline over hot + sealed + cold, `archive restore --cold` with identical rows, `archive verify --cold`."""

from tests.archival.test_tiering import *  # noqa: F403
