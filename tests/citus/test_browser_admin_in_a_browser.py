"""tests/browser/test_admin_in_a_browser.py (real Chromium), run against the Citus cluster (see conftest.py)."""

from tests.browser.test_admin_in_a_browser import *  # noqa: F403
