"""A real HTTP receiver (a threaded http.server) and a real SMTP server (aiosmtpd) on localhost, a channel and
a rule for each, and a pinned clock."""

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from notifications.models import AlertRule, NotificationChannel
from notifications.services.channels import channel_create, rule_create

# 23:55 UTC on the last day of a month: the hour, day and month all roll over within a reminder's wait.
NOW = datetime(2026, 11, 30, 23, 55, tzinfo=UTC)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order; then 200


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/its"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable_url() -> str:
    """A local port nothing listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/hooks/its"


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@pytest.fixture
def mailbox(settings) -> Iterator[Mailbox]:
    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
            return "250 OK"

    port = free_port()  # aiosmtpd's start-up check connects to the port it was given, so not 0
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.DEFAULT_FROM_EMAIL = "its@example.test"
    yield box
    controller.stop()


@pytest.fixture
def webhook(receiver, db) -> NotificationChannel:
    return channel_create(
        name="ops webhook", kind="webhook", url=receiver.url, secret="s3cret-signing-key-0123456789", verify=False
    )


def make_rule(channel: NotificationChannel, **fields) -> AlertRule:
    fields.setdefault("name", f"rule {channel.name} {AlertRule.objects.count()}")
    fields.setdefault("min_severity", "info")
    return rule_create(channel_ids=[channel.pk], **fields)
