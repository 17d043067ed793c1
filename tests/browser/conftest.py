from collections.abc import Iterator

import pytest
from django.db import connections

from .support import PASSWORD, launch_chromium

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser(live_server, django_user_model, monkeypatch) -> Iterator["sync_api.Browser"]:
    """Chromium against the live server, with an `operator` superuser (password PASSWORD) to sign in as."""
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("operator", "", PASSWORD)
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
        # The ORM calls made while Playwright's loop runs used connections of their own context.
        connections.close_all()


@pytest.fixture
def page(browser, live_server) -> "sync_api.Page":
    page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=live_server.url)
    page.set_default_timeout(15_000)
    return page
