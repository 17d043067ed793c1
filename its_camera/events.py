"""Live events: publish once, fan out to every web process through Redis, replay on reconnect.

Publishing is one Lua script, so it is atomic in Redis:

1. (optional) compare-and-set a piece of "last published state" in a hash: an event that would not
   change what subscribers were last told is not published (that makes publishers idempotent: a beat
   task may run twice, a heartbeat may repeat);
2. INCR a sequence: event ids are consecutive integers, so a subscriber that reconnects with
   `Last-Event-ID: 41` and finds 43 as the oldest buffered event knows it missed one;
3. XADD the event to a Redis stream trimmed to about LIVE_EVENTS_BUFFER_SIZE entries (the bounded
   replay buffer);
4. PUBLISH it on a pub/sub channel that each web process reads once and fans out to its own
   subscribers (its_camera.event_hub).

Events are advisory: when Redis is down, publishing logs, counts the failure and returns None instead
of failing the request or job that caused the event, and a short circuit breaker keeps a Redis outage
from adding a connect timeout to every request. State sweeps (cameras.status_events) re-synchronise
what was missed once Redis is back.

    event_publish(type="alert.raised", data={...})
    event_publish_on_commit(type="camera.status", data={...}, state=StateChange(...))
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction

from its_camera import metrics

logger = logging.getLogger(__name__)

KEY_PREFIX = "its:live:"
SEQUENCE_KEY = KEY_PREFIX + "seq"
STREAM_KEY = KEY_PREFIX + "events"
CHANNEL = KEY_PREFIX + "channel"

EVENTS_PUBLISHED = metrics.counter(
    "its_live_events_published_total", "Live events published to Redis, by type.", ["type"]
)
PUBLISH_FAILURES = metrics.counter(
    "its_live_event_publish_failures_total", "Live events not published because Redis was unavailable."
)

# KEYS: sequence, stream, state hash ('' when no state)   ARGV: channel, maxlen, type, data,
# state field ('' when no state), expected ('*' any, '' absent, else the exact previous value),
# new state ('' deletes the field), require ('1': the state hash must already hold the field in ARGV[8])
PUBLISH_SCRIPT = """
local field = ARGV[5]
if field ~= '' then
    local state_key = KEYS[3]
    if ARGV[8] ~= '' and redis.call('HEXISTS', state_key, ARGV[8]) == 0 then
        return false
    end
    local current = redis.call('HGET', state_key, field)
    local expected = ARGV[6]
    if expected == '' then
        if current then return false end
    elseif expected ~= '*' and current ~= expected then
        return false
    end
    if ARGV[7] == '' then
        if not current then return false end
        redis.call('HDEL', state_key, field)
    else
        if current == ARGV[7] then return false end
        redis.call('HSET', state_key, field, ARGV[7])
    end
end
local id = redis.call('INCR', KEYS[1])
if id == 1 then
    -- The counter was lost (flushed, evicted) but the buffer may not be: continue after its last entry.
    local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
    if last[1] then
        id = tonumber(string.match(last[1][1], '^(%d+)')) + 1
        redis.call('SET', KEYS[1], id)
    end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0', 't', ARGV[3], 'd', ARGV[4])
redis.call('PUBLISH', ARGV[1], id .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return id
"""


class LiveEventsUnavailable(Exception):
    """Redis cannot be reached: live events can neither be published nor streamed right now."""


@dataclass(frozen=True)
class StateChange:
    """Publish only if `field` of the hash `key` moves from `expected` to `new` (see the module doc).

    expected: "*" whatever it holds, "" the field must be absent, else the exact stored value.
    new: the value to store; "" removes the field. `require`: a field that must exist in the hash
    first (a baseline marker), else nothing is published."""

    key: str
    field: str
    new: str
    expected: str = "*"
    require: str = ""


@dataclass(frozen=True)
class Event:
    """One live event as subscribers see it. `data` is the JSON object sent as the SSE `data:` line."""

    id: int
    type: str
    data: dict[str, Any]
    raw_data: bytes = field(default=b"", compare=False, repr=False)

    def to_sse(self) -> bytes:
        body = self.raw_data or orjson.dumps(self.data)
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.type.encode(), body)

    @classmethod
    def from_parts(cls, event_id: int, event_type: str | bytes, raw_data: bytes) -> "Event":
        kind = event_type.decode() if isinstance(event_type, bytes) else event_type
        return cls(id=event_id, type=kind, data=orjson.loads(raw_data), raw_data=raw_data)

    @classmethod
    def from_message(cls, message: bytes) -> "Event":
        """Parse a pub/sub message: b"<id>\\n<type>\\n<json>"."""
        event_id, event_type, raw_data = message.split(b"\n", 2)
        return cls.from_parts(int(event_id), event_type, raw_data)


# --- Redis clients (per process, per URL) ------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_breaker_open_until = 0.0
_scripts: dict[int, Any] = {}  # the publish script object per client (keeps its SHA for EVALSHA)


def redis_client() -> redis.Redis:
    """The synchronous client used by publishers and sweeps: short timeouts, because events are advisory."""
    url = settings.LIVE_EVENTS_REDIS_URL or settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                timeout = settings.LIVE_EVENTS_REDIS_TIMEOUT_SECONDS
                client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
                _clients[url] = client
    return client


def _publish_args(event_type: str, raw_data: bytes, state: StateChange | None) -> tuple[list[str], list[Any]]:
    keys = [SEQUENCE_KEY, STREAM_KEY, state.key if state else STREAM_KEY]
    argv: list[Any] = [CHANNEL, settings.LIVE_EVENTS_BUFFER_SIZE, event_type, raw_data]
    if state is None:
        argv += ["", "*", "", ""]
    else:
        argv += [state.field, state.expected, state.new, state.require]
    return keys, argv


def publishing_paused() -> bool:
    """True for a few seconds after Redis failed: publishers skip instead of waiting on a timeout."""
    return time.monotonic() < _breaker_open_until


def publishing_failed(what: str, exc: Exception) -> None:
    global _breaker_open_until
    _breaker_open_until = time.monotonic() + settings.LIVE_EVENTS_RETRY_AFTER_SECONDS
    PUBLISH_FAILURES.inc()
    logger.warning("Live event %s not published (Redis unavailable): %s", what, exc)


def _script(client: redis.Redis) -> Any:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(PUBLISH_SCRIPT)
    return script


def event_publish(*, type: str, data: dict[str, Any], state: StateChange | None = None) -> int | None:
    """Publish one event; returns its id, or None when `state` says nothing changed or Redis is down."""
    if publishing_paused():
        PUBLISH_FAILURES.inc()
        return None
    raw_data = orjson.dumps(data)
    keys, argv = _publish_args(type, raw_data, state)
    client = redis_client()
    try:
        event_id = _script(client)(keys=keys, args=argv)
    except redis.RedisError as exc:
        publishing_failed(type, exc)
        return None
    if event_id is None:
        return None
    EVENTS_PUBLISHED.labels(type=type).inc()
    return int(event_id)


def event_publish_many(items: list[tuple[str, dict[str, Any], StateChange | None]]) -> list[int | None]:
    """Publish several events in one round trip (a pipeline of the same script); ids in order, None
    for events whose state did not change. Raises LiveEventsUnavailable when Redis is down: callers
    are jobs, which should record the failure rather than pretend they synchronised."""
    if not items:
        return []
    client = redis_client()
    script = _script(client)
    try:
        with client.pipeline(transaction=False) as pipe:
            for event_type, data, state in items:
                keys, argv = _publish_args(event_type, orjson.dumps(data), state)
                script(keys=keys, args=argv, client=pipe)
            results = pipe.execute()
    except redis.RedisError as exc:
        PUBLISH_FAILURES.inc(len(items))
        raise LiveEventsUnavailable(str(exc)) from exc
    ids: list[int | None] = []
    for (event_type, _data, _state), result in zip(items, results, strict=True):
        if result is None:
            ids.append(None)
        else:
            EVENTS_PUBLISHED.labels(type=event_type).inc()
            ids.append(int(result))
    return ids


def event_publish_on_commit(*, type: str, data: dict[str, Any], state: StateChange | None = None) -> None:
    """Publish once the current transaction commits (at once outside a transaction): subscribers must
    never hear about a change that was rolled back."""
    transaction.on_commit(partial(event_publish, type=type, data=data, state=state), robust=True)


def last_event_id() -> int:
    """The id of the newest event published (0 when none). Raises LiveEventsUnavailable."""
    try:
        value = redis_client().get(SEQUENCE_KEY)
    except redis.RedisError as exc:
        raise LiveEventsUnavailable(str(exc)) from exc
    return int(value or 0)


def buffer_info() -> dict[str, int]:
    """Length and id range of the replay buffer, for the health page."""
    try:
        client = redis_client()
        with client.pipeline(transaction=False) as pipe:
            pipe.xlen(STREAM_KEY)
            pipe.xrange(STREAM_KEY, count=1)
            pipe.get(SEQUENCE_KEY)
            length, oldest, sequence = pipe.execute()
    except redis.RedisError as exc:
        raise LiveEventsUnavailable(str(exc)) from exc
    oldest_id = int(oldest[0][0].split(b"-")[0]) if oldest else 0
    return {"length": int(length), "oldest_id": oldest_id, "last_id": int(sequence or 0)}
