"""tests/browser/test_camera_page_browser.py (real Chromium), run against the Citus cluster (see conftest.py)."""

from tests.browser.test_camera_page_browser import *  # noqa: F403
