"""Shared by the browser tests: Debian's Chromium (no browser download), where screenshots go, signing in."""

import os
from pathlib import Path

from django.conf import settings
from django.urls import reverse

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PASSWORD = "a walk through the admin"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def launch_chromium(playwright):
    """Debian's Chromium, headless. Without LD_PRELOAD: `make test-clock` preloads libfaketime into every process,
    and Chromium stalls under it; the browser needs no fake clock, the pages' times come from the server."""
    environment = {name: value for name, value in os.environ.items() if name not in {"LD_PRELOAD", "FAKETIME"}}
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=environment)


def snap(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str = "operator") -> None:
    page.goto(reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
