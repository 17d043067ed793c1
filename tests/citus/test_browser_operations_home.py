"""tests/browser/test_operations_home.py (real Chromium), run against the Citus cluster (see conftest.py)."""

from tests.browser.test_operations_home import *  # noqa: F403
