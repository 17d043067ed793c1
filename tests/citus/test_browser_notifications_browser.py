"""tests/browser/test_notifications_browser.py (real Chromium), run against the Citus cluster (see conftest.py)."""

from tests.browser.test_notifications_browser import *  # noqa: F403
