"""tests/telemetry/test_partitioning.py on the Citus cluster (conftest.py),
from no partitions, as on one node."""

import pytest

from tests.telemetry.test_partitioning import *  # noqa: F403

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_partitions")]
