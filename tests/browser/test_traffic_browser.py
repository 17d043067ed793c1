"""An operator draws a counting line and a region over a camera's frame in a real browser (Debian's Chromium via
Playwright), then opens the traffic dashboard. Screenshots go to test-artifacts/screenshots/."""

import pytest
from django.urls import reverse

from cameras.models import Camera
from traffic.models import CountingLine, Region

from .support import CHROMIUM, sign_in, snap

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


def click_at(page, fraction_x, fraction_y):
    svg = page.locator("#geometry-svg")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    svg.click(position={"x": box["width"] * fraction_x, "y": box["height"] * fraction_y})


def test_an_operator_draws_a_line_and_a_region_on_the_frame(page):
    camera = Camera.objects.create(name="Quay St", config={"resolution": "1080p"})
    sign_in(page)

    # A line: choose the camera, click point 1 and point 2 on the frame, pick the "in" side
    page.goto(reverse("admin:traffic_countingline_add"))
    page.select_option("#id_camera", label="Quay St")
    page.wait_for_function("document.getElementById('geometry-frame-size').textContent.includes('1920')")
    page.fill("#id_name", "stop line")
    click_at(page, 0.10, 0.60)
    click_at(page, 0.90, 0.65)
    page.select_option("#id_in_side", "right")
    assert page.locator("#geometry-svg text", has_text="in").count() == 1
    snap(page, "traffic-01-line-drawn")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    version = CountingLine.objects.get(camera=camera, name="stop line").versions.get()
    assert abs(version.x1 - 192) <= 20
    assert abs(version.y1 - 648) <= 20
    assert abs(version.x2 - 1728) <= 20
    assert abs(version.y2 - 702) <= 20
    assert version.in_side == "right"

    # A region: three clicks make a triangle
    page.goto(reverse("admin:traffic_region_add"))
    page.select_option("#id_camera", label="Quay St")
    page.wait_for_function("document.getElementById('geometry-frame-size').textContent.includes('1920')")
    page.fill("#id_name", "junction")
    for x, y in ((0.2, 0.2), (0.5, 0.25), (0.35, 0.6)):
        click_at(page, x, y)
    snap(page, "traffic-02-region-drawn")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert len(Region.objects.get(camera=camera, name="junction").versions.get().points) == 3

    # The dashboard draws the line on the camera's frame outline
    page.goto(reverse("admin:traffic_dashboard") + f"?camera={camera.id}")
    assert page.locator(".traffic-frames svg line").count() == 1
    snap(page, "traffic-03-dashboard")
