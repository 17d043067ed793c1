"""`GET /api/v1/cameras/status/stream`: live camera status and alerts as Server-Sent Events.

An async Django view outside ninja (ninja operations cannot stream), routed in config/urls.py before
the API; it needs an ASGI server (uvicorn) to stream. See docs/live.md for the event format.

Auth: an API key with `cameras:read` in `X-API-Key` / `Authorization: Bearer` (integrations), or the
admin session of an active staff user (the fleet dashboard: a browser's EventSource cannot send
headers, and a key in the URL would end up in logs). Filters: `zone`, `camera`, `status`, `type`
(each repeatable; values of one filter are OR-ed, filters are AND-ed). Resuming: the
`Last-Event-ID` header (browsers send it on reconnect) or `?last_event_id=` (first connection after
loading a snapshot).
"""

import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponseBase, QueryDict, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import HttpError
from psycopg_pool import PoolTimeout

from cameras.choices import CameraStatus, ConnectionStatus
from cameras.status_events import EVENT_TYPES
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.errors import error_response
from its_camera.choices import ApiScope
from its_camera.event_hub import EventHub, Replay, Subscription, get_hub
from its_camera.events import Event, LiveEventsUnavailable

logger = logging.getLogger(__name__)

MAX_FILTER_VALUES = 200
STATUS_VALUES = frozenset([*CameraStatus.values, *ConnectionStatus.values])
TYPE_VALUES = frozenset([*EVENT_TYPES, *{kind.split(".")[0] for kind in EVENT_TYPES}])


@dataclass(frozen=True)
class StreamFilter:
    zones: frozenset[str] = frozenset()
    cameras: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    alerts_hidden: bool = False  # a session without cameras.view_alert

    @classmethod
    def from_query(cls, query: QueryDict) -> "StreamFilter":
        """Parse and validate the query string; ValidationError (422) names each bad parameter."""
        errors: dict[str, list[str]] = {}

        def values(name: str, check: frozenset[str] | None = None) -> frozenset[str]:
            raw = [value.strip() for value in query.getlist(name) for value in value.split(",") if value.strip()]
            if len(raw) > MAX_FILTER_VALUES:
                errors[name] = [f"At most {MAX_FILTER_VALUES} values."]
                return frozenset()
            if check is None:  # UUIDs, normalised to the form events carry
                try:
                    return frozenset(str(uuid.UUID(value)) for value in raw)
                except ValueError:
                    errors[name] = ["Each value must be a UUID."]
                    return frozenset()
            unknown = sorted(set(raw) - check)
            if unknown:
                errors[name] = [f"Unknown value(s) {', '.join(unknown)}; expected one of {', '.join(sorted(check))}."]
            return frozenset(raw)

        stream_filter = cls(
            zones=values("zone"),
            cameras=values("camera"),
            statuses=values("status", STATUS_VALUES),
            types=values("type", TYPE_VALUES),
        )
        if errors:
            raise ValidationError(errors)
        return stream_filter

    def matches(self, event: Event) -> bool:
        """Camera filters match the camera's state before or after the change, so a subscriber to
        `status=stale` also hears of a camera leaving that state. `status` does not apply to alerts.
        Fleet-wide events (fleet.reset) reach every subscriber."""
        if event.type.startswith("fleet."):
            return True
        if self.alerts_hidden and event.type.startswith("alert."):
            return False
        if self.types and event.type not in self.types and event.type.split(".")[0] not in self.types:
            return False
        data = event.data
        previous = data.get("previous") or {}
        if self.cameras and data.get("camera_id") not in self.cameras:
            return False
        if self.zones and data.get("zone_id") not in self.zones and previous.get("zone_id") not in self.zones:
            return False
        if self.statuses and event.type.startswith("camera."):
            seen = {data.get("status"), data.get("connection_status"), previous.get("status")}
            seen.add(previous.get("connection_status"))
            if not seen & self.statuses:
                return False
        return True


def last_event_id(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({"last_event_id": ["Must be an event id (a non-negative integer)."]})
    return int(raw)


@dataclass(frozen=True)
class Access:
    """Who may follow the stream, and whether alert events reach them."""

    denied: HttpResponseBase | None = None
    sees_alerts: bool = True


def authorize(request: HttpRequest) -> Access:
    """Whether the caller may read camera status (and alerts). Runs in a thread (database access) and hands
    its connection back to the pool: a stream lives for hours and must not hold a pooled connection while it
    does. An admin session needs the permissions of what the stream shows: `cameras.view_camera`, and
    `cameras.view_alert` for alert events. A database that cannot be reached is a 503, not a 500."""
    try:
        auth = ApiKeyAuth(ApiScope.CAMERAS_READ)
        key = auth._get_key(request)
        if key:
            try:
                api_key = auth.authenticate(request, key)
            except HttpError as exc:
                return Access(denied=error_response(exc.status_code, exc.message))
            if api_key is None:
                return Access(
                    denied=error_response(
                        401, "Missing, unknown or revoked API key.", WWW_Authenticate='Bearer realm="api"'
                    )
                )
            return Access()
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active and user.is_staff:
            if not user.has_perm("cameras.view_camera"):
                return Access(
                    denied=error_response(403, "Following the stream needs the cameras.view_camera permission.")
                )
            return Access(sees_alerts=user.has_perm("cameras.view_alert"))
        return Access(
            denied=error_response(401, "Send an API key with cameras:read, or sign in to the admin as staff.")
        )
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        logger.warning("Database unavailable while authorizing the live stream: %s", exc)
        return Access(denied=error_response(503, "Database unavailable, retry later.", Retry_After="5"))
    finally:
        connection.close()


def reset_event(*, last_id: int, reason: str) -> bytes:
    return Event(id=last_id, type="stream.reset", data={"reason": reason, "last_event_id": last_id}).to_sse()


async def sse_events(
    hub: EventHub, subscription: Subscription, replay: Replay | None, stream_filter: StreamFilter
) -> AsyncIterator[bytes]:
    """The response body: replayed events, then live ones, with comment-line heartbeats when idle."""
    heartbeat = settings.LIVE_EVENTS_HEARTBEAT_SECONDS
    sent_up_to = 0  # live events at or below this id were already sent by the replay
    try:
        head = [b"retry: %d\n: connected\n\n" % settings.LIVE_EVENTS_CLIENT_RETRY_MS]
        if replay is not None:
            if replay.gap:
                head.append(reset_event(last_id=replay.last_id, reason="gap"))
            head += [event.to_sse() for event in replay.events if stream_filter.matches(event)]
            sent_up_to = max([replay.last_id, *(event.id for event in replay.events)])
        yield b"".join(head)
        max_seconds = settings.LIVE_EVENTS_MAX_STREAM_SECONDS
        deadline = time.monotonic() + max_seconds if max_seconds > 0 else None
        while True:
            wait = heartbeat
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    # A bounded connection: clients reconnect with Last-Event-ID and lose nothing, and
                    # connections spread again over the web processes.
                    yield b": closed: max-age\n\n"
                    return
            batch = await subscription.next_batch(wait)
            if batch is None:
                yield b": heartbeat\n\n"
                continue
            fresh = [event for event in batch if event.id > sent_up_to]
            if fresh:
                sent_up_to = fresh[-1].id
                yield b"".join(event.to_sse() for event in fresh)
            if subscription.closed_reason is not None:
                # Slow (queue full) or Redis gone: the client reconnects with its Last-Event-ID.
                yield b": closed: %s\n\n" % subscription.closed_reason.encode()
                return
    finally:
        hub.unsubscribe(subscription)


@csrf_exempt  # read-only; a POST gets the API's JSON 405, not the CSRF page
async def camera_status_stream(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return error_response(405, "Method Not Allowed", Allow="GET")
    access = await sync_to_async(authorize)(request)
    if access.denied is not None:
        return access.denied
    try:
        stream_filter = StreamFilter.from_query(request.GET)
        resume_after = last_event_id(request)
    except ValidationError as exc:
        return error_response(422, exc.message_dict)
    if not access.sees_alerts:
        stream_filter = dataclasses.replace(stream_filter, alerts_hidden=True)
    hub = get_hub()
    unavailable = error_response(
        503, "Live events are unavailable (Redis cannot be reached); retry later.", Retry_After="5"
    )
    try:
        subscription = await hub.subscribe(stream_filter.matches)
    except LiveEventsUnavailable:
        return unavailable
    try:
        replay = await hub.replay(resume_after) if resume_after is not None else None
    except LiveEventsUnavailable:
        hub.unsubscribe(subscription)
        return unavailable
    response = StreamingHttpResponse(
        sse_events(hub, subscription, replay, stream_filter), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


def stream_openapi() -> dict:
    """The stream's OpenAPI path item: it is served outside ninja (config/urls.py), so it is added to the API's
    document by hand (its_camera.api.openapi.DocumentedNinjaAPI); the error statuses are added there."""

    def repeatable(name: str, description: str, values: list[str] | None = None) -> dict:
        item: dict = {"type": "string", "format": "uuid"} if values is None else {"type": "string", "enum": values}
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": {"type": "array", "items": item, "maxItems": MAX_FILTER_VALUES},
            "style": "form",
            "explode": True,
        }

    event_format = (
        "A `text/event-stream`: `retry:` and a `: connected` comment first, then one block per event "
        "(`id:` a growing integer, `event:` camera.status, camera.removed, alert.raised, alert.acknowledged, "
        "alert.resolved, fleet.reset or stream.reset, `data:` one JSON object), `: heartbeat` comments when idle. "
        "Reconnect with `Last-Event-ID` to resume without loss. The connection is closed after "
        "LIVE_EVENTS_MAX_STREAM_SECONDS; reconnect then too. See docs/live.md for each event's data."
    )
    # One event of the stream (OpenAPI 3.2's reading of an event-stream schema: it describes each event).
    event_schema = {
        "type": "object",
        "description": "One event; `data` is a JSON object (docs/live.md lists each type's fields).",
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"type": "string", "enum": [*EVENT_TYPES, "stream.reset"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
            "retry": {"type": "integer", "minimum": 0},
        },
        "required": ["data"],
    }
    return {
        "get": {
            "operationId": "cameras_stream_camera_status_stream",
            "summary": "Live camera status and alerts (Server-Sent Events)",
            "description": event_format,
            "tags": ["cameras"],
            "parameters": [
                repeatable("zone", "Zone ids (repeatable or comma-separated)."),
                repeatable("camera", "Camera ids (repeatable or comma-separated)."),
                repeatable("status", "Camera or connection statuses (camera events only).", sorted(STATUS_VALUES)),
                repeatable("type", "Event types or families (`camera`, `alert`).", sorted(TYPE_VALUES)),
                {
                    "name": "last_event_id",
                    "in": "query",
                    "required": False,
                    "description": "Resume after this event id (first connection after loading a snapshot).",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume after this event id (what browsers send on reconnect).",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The event stream.",
                    "content": {"text/event-stream": {"schema": event_schema}},
                }
            },
            "security": [{"ApiKeyAuth": []}],
        }
    }
