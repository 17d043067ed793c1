"""An operator wires alerts to a webhook in Chromium: adds the channel (checked with a test message to a real
local receiver), writes a rule, sees an alert's message in the delivery log. Screenshots of each page."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from cameras.choices import AlertKind
from cameras.services.alerts import alert_raise
from notifications.models import AlertRule, NotificationChannel, NotificationDelivery
from notifications.services.deliveries import delivery_attempt

from .support import CHROMIUM, sign_in, snap

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)")


@pytest.fixture
def received():
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def test_an_operator_sends_alerts_to_a_webhook(page, received):
    url, bodies = received
    sign_in(page)

    # The operator adds a webhook channel; saving sends a test message first
    page.goto(reverse("admin:notifications_notificationchannel_add"))
    page.fill("#id_name", "Ops webhook")
    page.select_option("#id_kind", "webhook")
    page.fill("#id_url", url)
    snap(page, "20-notification-channel-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    channel = NotificationChannel.objects.get(name="Ops webhook")
    assert [body["event"] for body in bodies] == ["test"]

    # and a rule sending camera_offline alerts to it
    page.goto(reverse("admin:notifications_alertrule_add"))
    page.fill("#id_name", "Offline cameras")
    page.check("input[name=kinds][value=camera_offline]")
    page.select_option("#id_min_severity", "info")
    page.dblclick(f"#id_channels_from option[value='{channel.pk}']")  # the admin's two-list picker
    snap(page, "21-alert-rule-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert list(AlertRule.objects.get(name="Offline cameras").channels.all()) == [channel]

    # When an alert opens and a worker sends it
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, subject="cam-7", message="Camera 7 silent for 10 min")
    for delivery_id in NotificationDelivery.objects.filter(state="pending").values_list("pk", flat=True):
        delivery_attempt(delivery_id=delivery_id)

    # Then the receiver has it and the delivery log shows it sent
    assert bodies[-1]["event"] == "alert.opened"
    page.goto(reverse("admin:notifications_notificationdelivery_changelist"))
    assert "Camera 7 silent" in page.inner_text("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1  # the check before saving is not a delivery
    snap(page, "22-notification-delivery-log")
