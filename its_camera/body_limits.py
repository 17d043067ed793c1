"""ASGI: a request body under /api/ is allowed before it is read, and never read past its limit.

Django's ASGI handler reads the whole body (spooling it to disk past 2.5 MB) before any view, middleware
or authentication runs: an anonymous client could make every web process write 200 MiB to disk only to be
told 401. This wrapper answers first, from the headers alone:

- a `Content-Length` above the endpoint's limit: 413 (TELEMETRY_MAX_BODY_BYTES on the ingest endpoints,
  Django's DATA_UPLOAD_MAX_MEMORY_SIZE elsewhere), without reading a byte;
- a body larger than API_UNAUTHENTICATED_BODY_BYTES, or of unknown length (chunked), with no valid API key:
  401, without reading it (small bodies go through: the API's own auth answers them as before);
- a body that streams past its limit whatever it declared (chunked, or a lying `Content-Length`): reading
  stops at the limit and the answer is 413.

Everything else passes through untouched (the API still authenticates and checks scopes itself).
"""

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/"
INGEST_PATHS = frozenset({"/api/v1/frames", "/api/v1/metrics", "/api/v1/frames/status"})


def body_limit(path: str) -> int:
    """The most bytes a body sent to `path` may have."""
    if path.rstrip("/") in INGEST_PATHS:
        return int(settings.TELEMETRY_MAX_BODY_BYTES)
    django_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return int(django_limit) if django_limit is not None else int(settings.TELEMETRY_MAX_BODY_BYTES)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _api_key(scope: Scope) -> str | None:
    key = _header(scope, b"x-api-key")
    if key:
        return key.strip()
    scheme, _, credentials = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _key_is_valid(raw_key: str) -> bool:
    from its_camera.services.api_keys import api_key_authenticate  # the app registry is ready by now

    try:
        return api_key_authenticate(raw_key=raw_key) is not None
    finally:
        connection.close()  # outside Django's request cycle: hand the connection back to the pool


async def _answer(send: Send, status: int, detail: str, **headers: str) -> None:
    body = orjson.dumps({"detail": detail})
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.lower().replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    raw_headers.append((b"connection", b"close"))  # the unread body makes the connection unusable
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared_text = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        declared: int | None = None
        if declared_text is not None:
            try:
                declared = int(declared_text)
            except ValueError:
                await _answer(send, 400, "Invalid Content-Length header.")
                return
            if declared < 0:
                await _answer(send, 400, "Invalid Content-Length header.")
                return
            if declared > limit:
                await _answer(send, 413, f"Request body too large: the limit is {limit} bytes.")
                return
        unknown_length = declared is None and chunked
        if unknown_length or (declared or 0) > settings.API_UNAUTHENTICATED_BODY_BYTES:
            raw_key = _api_key(scope)
            if not raw_key or not await sync_to_async(_key_is_valid)(raw_key):
                await _answer(
                    send,
                    401,
                    "Missing, unknown or revoked API key (checked before reading a large body).",
                    WWW_Authenticate='Bearer realm="api"',
                )
                return
        await self._guarded(scope, receive, send, limit)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with a receive that stops at `limit` bytes; past it, the answer is 413."""
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    logger.info("Body to %s stopped at %d bytes (limit %d)", scope["path"], received, limit)
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if exceeded:
                    return  # our 413 below answers instead
                started = True
            elif exceeded and not started:
                return
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if exceeded and not started:
            await _answer(send, 413, f"Request body too large: the limit is {limit} bytes.")
