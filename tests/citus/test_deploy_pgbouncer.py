"""tests/deploy/test_pgbouncer.py, run against the Citus cluster (see conftest.py): deploy/pgbouncer.ini in front
of the coordinator, the admin, the API and ingest (COPY, idempotent replay, status updates) through its pools."""

from tests.deploy.test_pgbouncer import *  # noqa: F403
