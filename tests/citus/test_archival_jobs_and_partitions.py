"""tests/archival/test_jobs_and_partitions.py on the Citus cluster (conftest.py),
from no partitions, as on one node."""

import pytest

from tests.archival.test_jobs_and_partitions import *  # noqa: F403

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_partitions")]
