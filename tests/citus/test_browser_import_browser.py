"""tests/browser/test_import_browser.py (real Chromium), run against the Citus cluster (see conftest.py)."""

from tests.browser.test_import_browser import *  # noqa: F403
