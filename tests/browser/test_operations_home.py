"""The admin home (operations dashboard) in Chromium at a desktop and a narrow width: the panels sit in a grid,
the Operations links are one line each (they were one letter per line), nothing overflows sideways."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise
from tests.cameras.factories import make_camera

from .support import CHROMIUM, sign_in, snap

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)")

LAYOUT = """() => {
  const box = (element) => element.getBoundingClientRect();
  const links = [...document.querySelectorAll('#operations-pages a')].map((a) => ({
    text: a.textContent.trim(), width: box(a).width, height: box(a).height,
    lineHeight: parseFloat(getComputedStyle(a).lineHeight) || 20, clipped: a.scrollWidth > a.clientWidth + 1,
  }));
  const panels = [...document.querySelectorAll('.operations-panel')].map((panel) => ({
    id: panel.id, left: Math.round(box(panel).left), right: box(panel).right, width: box(panel).width,
    overflowing: panel.scrollWidth > panel.clientWidth + 1,
  }));
  return {
    viewport: window.innerWidth,
    pageWidth: document.documentElement.scrollWidth,
    links, panels,
    appList: box(document.querySelector('.operations-apps')).width,
  };
}"""


@pytest.mark.parametrize(("width", "columns"), [(1400, 3), (800, 1)])
def test_the_operations_home_lays_out_at_desktop_and_narrow_widths(browser, live_server, width, columns):
    # Given a fleet with a stale camera and open alerts
    for _ in range(3):
        make_camera(last_seen_at=timezone.now())
    stale = make_camera(last_seen_at=timezone.now() - timedelta(hours=1))
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=stale, message="silent", severity=AlertSeverity.CRITICAL)
    page = browser.new_page(viewport={"width": width, "height": 900}, base_url=live_server.url)
    page.set_default_timeout(15_000)

    # When an operator signs in and lands on the home
    sign_in(page)
    layout = page.evaluate(LAYOUT)
    snap(page, f"10-operations-home-{width}")

    # Then nothing overflows sideways
    assert layout["pageWidth"] <= layout["viewport"], layout
    # and every panel is there, readable, inside the viewport and not overflowing itself
    assert [panel["id"] for panel in layout["panels"]] == [
        "panel-fleet", "panel-alerts", "panel-ingest", "panel-storage", "panel-jobs",
    ]  # fmt: skip
    for panel in layout["panels"]:
        assert panel["width"] >= min(280, width - 60), panel
        assert panel["right"] <= layout["viewport"], panel
        assert not panel["overflowing"], panel
    # with at least `columns` panels side by side
    assert len({panel["left"] for panel in layout["panels"]}) >= columns
    # and each Operations link is one line of readable width, not one letter per line
    titles = [link["text"] for link in layout["links"]]
    assert {"Fleet status", "Ingest and detections", "Database health", "Partition health"} <= set(titles)
    for link in layout["links"]:
        assert link["height"] < 2 * link["lineHeight"], link
        assert link["width"] >= 80, link
        assert not link["clipped"], link
    assert page.text_content("[data-home=stale]").strip() == "1"
    assert page.locator("#panel-alerts tr[data-severity=critical] td.number").first.inner_text() == "1"
