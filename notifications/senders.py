"""The two transports: a signed JSON POST, and an email through Django's email backend. Each sends one message
or raises DeliveryError with a sentence an operator can act on."""

import hashlib
import hmac
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

SIGNATURE_HEADER = "X-ITS-Signature"
MAX_RESPONSE_BYTES = 1024  # read this much of a receiver's answer, for the log; never more


class DeliveryError(Exception):
    """A message could not be delivered; the text says why (shown in the delivery log and in form errors)."""


@dataclass(frozen=True)
class SendResult:
    status: int | None = None


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the receiver recomputes it with the channel's
    secret and rejects a mismatch or an old timestamp (replay)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A receiver answering with a redirect is misconfigured; following it would send the signed body elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_body(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def webhook_post(
    *, url: str, secret: str, payload: dict[str, Any], timeout: float, timestamp: int, delivery_id: int | None
) -> SendResult:
    body = webhook_body(payload)
    host = urlsplit(url).netloc or url
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked (http/https only) when the channel is saved
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "its-camera-notifications/1",
            SIGNATURE_HEADER: signature(secret=secret, timestamp=timestamp, body=body),
            "X-ITS-Event": str(payload.get("event", "")),
            "X-ITS-Delivery": str(delivery_id or ""),
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE_BYTES)
            return SendResult(status=response.status)
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"Webhook {host} answered HTTP {error.code} {error.reason}".strip()) from error
    except urllib.error.URLError as error:
        raise DeliveryError(f"Webhook {host} unreachable: {error.reason}") from error
    except TimeoutError as error:
        raise DeliveryError(f"Webhook {host} did not answer within {timeout:g} s") from error
    except OSError as error:
        raise DeliveryError(f"Webhook {host} failed: {error}") from error


def email_send(*, recipients: list[str], subject: str, body: str, timeout: float) -> SendResult:
    try:
        connection = get_connection(timeout=timeout)
        sent = EmailMessage(
            subject=subject[:200],
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
            connection=connection,
        ).send()
    except (OSError, Exception) as error:  # smtplib's errors are OSError subclasses; backends may raise others
        raise DeliveryError(f"Email to {', '.join(recipients)} failed: {type(error).__name__}: {error}") from error
    if not sent:
        raise DeliveryError(f"Email to {', '.join(recipients)} was not accepted")
    return SendResult()
