"""The subscriber side of live events, for async views (ASGI): one Redis pub/sub connection per process
fans events out to any number of local subscribers; reconnecting subscribers catch up from the replay
buffer (see its_camera.events for the publishing side).

- Each subscriber has a bounded queue. The hub never waits for a subscriber: one whose queue is full
  (a client that stopped reading) is dropped, its stream ends, and the client reconnects with
  `Last-Event-ID` to catch up from the buffer. Slow clients therefore cost nobody else anything.
- When Redis goes away every subscriber is dropped with reason "unavailable", and new subscriptions
  fail fast with LiveEventsUnavailable until it is back (the stream answers 503).
- Replay reads the Redis stream after the client's last id. Ids are consecutive, so a hole (the
  buffer was trimmed past the client, or Redis lost its data) is detected and reported as a gap: the
  client must reload its snapshot.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from its_camera import metrics
from its_camera.events import CHANNEL, SEQUENCE_KEY, STREAM_KEY, Event, LiveEventsUnavailable

logger = logging.getLogger(__name__)

SUBSCRIBERS = metrics.gauge("its_live_subscribers", "Open live event streams, summed over web processes.")
SUBSCRIBERS_DROPPED = metrics.counter(
    "its_live_subscribers_dropped_total", "Live event streams closed by the server, by reason.", ["reason"]
)

EventFilter = Callable[[Event], bool]


class Subscription:
    """One client's view of the event flow: a bounded queue filled by the hub, drained by the stream."""

    def __init__(self, matches: EventFilter, max_pending: int) -> None:
        self.matches = matches
        self.max_pending = max_pending
        self.pending: deque[Event] = deque()
        self.wakeup = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, event: Event) -> bool:
        """Queue `event` if it matches; False when the subscriber is too far behind and must be dropped."""
        if not self.matches(event):
            return True
        if len(self.pending) >= self.max_pending:
            return False
        self.pending.append(event)
        self.wakeup.set()
        return True

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            SUBSCRIBERS_DROPPED.labels(reason=reason).inc()
        self.wakeup.set()

    async def next_batch(self, timeout: float) -> list[Event] | None:
        """The events queued so far (possibly none when closed), or None after `timeout` idle seconds."""
        if not self.pending and self.closed_reason is None:
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout)
            except TimeoutError:
                return None
        self.wakeup.clear()
        batch = list(self.pending)
        self.pending.clear()
        return batch


@dataclass
class Replay:
    events: list[Event] = field(default_factory=list)
    gap: bool = False  # events after the client's id are no longer buffered (or Redis lost them)
    last_id: int = 0  # the newest event id at replay time


def parse_stream_entries(entries: Any) -> list[Event]:
    """XRANGE entries [(b"<id>-0", {b"t": type, b"d": json}), ...] as events."""
    return [Event.from_parts(int(entry_id.split(b"-")[0]), fields[b"t"], fields[b"d"]) for entry_id, fields in entries]


class EventHub:
    """Per process and event loop: the pub/sub reader and the set of local subscriptions."""

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.reader: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.connect_lock = asyncio.Lock()
        self.client: aioredis.Redis | None = None

    def _redis(self) -> aioredis.Redis:
        if self.client is None:
            timeout = settings.LIVE_EVENTS_REDIS_TIMEOUT_SECONDS
            self.client = aioredis.Redis.from_url(
                settings.LIVE_EVENTS_REDIS_URL or settings.REDIS_URL,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                # Errors must reach us (to drop subscribers and answer 503), not be retried away.
                retry=Retry(NoBackoff(), 0),
            )
        return self.client

    async def _ensure_reader(self) -> None:
        if self.reader is not None and not self.reader.done() and self.connected.is_set():
            return
        async with self.connect_lock:
            if self.reader is not None and not self.reader.done() and self.connected.is_set():
                return
            pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(CHANNEL), settings.LIVE_EVENTS_REDIS_TIMEOUT_SECONDS)
            except (redis.RedisError, OSError, TimeoutError) as exc:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise LiveEventsUnavailable(str(exc) or type(exc).__name__) from exc
            self.connected.set()
            self.reader = asyncio.create_task(self._read(pubsub), name="live-events-reader")

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        interval = settings.LIVE_EVENTS_REDIS_PING_SECONDS
        last_heard = last_ping = time.monotonic()
        try:
            while True:
                message = await pubsub.get_message(timeout=min(1.0, interval))
                now = time.monotonic()
                if message is not None:
                    last_heard = now
                    if message["type"] == "message":
                        self._dispatch(message["data"])
                if now - last_heard > 3 * interval:
                    raise LiveEventsUnavailable("no answer from Redis to pings")
                if now - last_ping >= interval:
                    await pubsub.ping()
                    last_ping = now
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the reader, subscribers must hear of it
            logger.warning("Live events reader stopped: %s", exc)
        finally:
            self.connected.clear()
            for subscription in list(self.subscriptions):
                subscription.close("unavailable")
            self.subscriptions.clear()
            SUBSCRIBERS.set(0)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _dispatch(self, payload: bytes) -> None:
        try:
            event = Event.from_message(payload)
        except ValueError:
            logger.warning("Ignoring a malformed live event message")
            return
        for subscription in list(self.subscriptions):
            if not subscription.offer(event):
                self.unsubscribe(subscription, reason="slow")

    async def subscribe(self, matches: EventFilter) -> Subscription:
        """Start receiving matching events. Raises LiveEventsUnavailable when Redis cannot be reached."""
        await self._ensure_reader()
        subscription = Subscription(matches, settings.LIVE_EVENTS_SUBSCRIBER_QUEUE_SIZE)
        self.subscriptions.add(subscription)
        SUBSCRIBERS.inc()
        return subscription

    def unsubscribe(self, subscription: Subscription, reason: str | None = None) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.discard(subscription)
            SUBSCRIBERS.dec()
        if reason:
            subscription.close(reason)

    async def replay(self, after_id: int) -> Replay:
        """The buffered events after `after_id` (all types; callers filter). Call it after subscribe(), so
        nothing published in between is lost; events seen both ways are de-duplicated by id."""
        client = self._redis()
        limit = settings.LIVE_EVENTS_BUFFER_SIZE
        try:
            last_id = int(await client.get(SEQUENCE_KEY) or 0)
            if after_id >= last_id:
                # Nothing newer; an id beyond the newest means Redis lost its data (restart without persistence).
                return Replay(gap=after_id > last_id, last_id=last_id)
            events: list[Event] = []
            cursor = after_id
            # In chunks, and never more than the buffer holds (trimming is approximate: allow twice).
            while cursor < last_id and len(events) < 2 * limit:
                entries = await client.xrange(STREAM_KEY, min=f"({cursor}-0", max="+", count=1000)
                if not entries:
                    break
                events += parse_stream_entries(entries)
                cursor = events[-1].id
        except (redis.RedisError, OSError) as exc:
            raise LiveEventsUnavailable(str(exc) or type(exc).__name__) from exc
        gap = not events or events[0].id != after_id + 1
        return Replay(events=events, gap=gap, last_id=last_id)


_hubs: "WeakKeyDictionary[asyncio.AbstractEventLoop, EventHub]" = WeakKeyDictionary()


def get_hub() -> EventHub:
    """The hub of the running event loop (one per uvicorn worker process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = EventHub()
    return hub
