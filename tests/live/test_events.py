"""Publishing live events: ids, the bounded replay buffer, state compare-and-set, Redis outages."""

import socket
import time

import pytest
from django.db import transaction

from its_camera import events
from its_camera.events import StateChange

from .conftest import stream_entries


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_event_ids_are_consecutive_and_every_event_is_buffered(live_redis):
    ids = [events.event_publish(type="alert.raised", data={"n": n}) for n in range(5)]

    assert ids == [1, 2, 3, 4, 5]
    assert stream_entries(live_redis) == [(n + 1, "alert.raised", {"n": n}) for n in range(5)]
    assert events.last_event_id() == 5


def test_the_buffer_is_bounded(live_redis, settings):
    settings.LIVE_EVENTS_BUFFER_SIZE = 100
    for n in range(1000):
        events.event_publish(type="alert.raised", data={"n": n})

    info = events.buffer_info()
    # MAXLEN ~ trims whole internal nodes: about the size asked for, never the whole history
    assert 100 <= info["length"] < 300
    assert info["last_id"] == 1000
    assert info["oldest_id"] == 1000 - info["length"] + 1


def test_ids_continue_after_the_buffer_when_the_counter_is_lost(live_redis):
    for n in range(3):
        events.event_publish(type="alert.raised", data={"n": n})
    live_redis.delete(events.SEQUENCE_KEY)  # evicted or flushed on its own

    assert events.event_publish(type="alert.raised", data={"n": 3}) == 4


def test_a_state_change_is_published_once(live_redis):
    change = StateChange(key=events.KEY_PREFIX + "test-state", field="camera-1", new="stale")

    first = events.event_publish(type="camera.status", data={"to": "stale"}, state=change)
    again = events.event_publish(type="camera.status", data={"to": "stale"}, state=change)

    assert first == 1
    assert again is None
    assert len(stream_entries(live_redis)) == 1
    assert live_redis.hget(events.KEY_PREFIX + "test-state", "camera-1") == b"stale"


def test_a_state_change_expecting_another_previous_value_is_refused(live_redis):
    key = events.KEY_PREFIX + "test-state"
    live_redis.hset(key, "camera-1", "recent")

    stale_view = StateChange(key=key, field="camera-1", new="stale", expected="streaming")
    assert events.event_publish(type="camera.status", data={}, state=stale_view) is None
    assert live_redis.hget(key, "camera-1") == b"recent"
    right_view = StateChange(key=key, field="camera-1", new="stale", expected="recent")
    assert events.event_publish(type="camera.status", data={}, state=right_view) == 1


def test_a_required_marker_must_exist(live_redis):
    key = events.KEY_PREFIX + "test-state"
    change = StateChange(key=key, field="camera-1", new="stale", require="~baseline")

    assert events.event_publish(type="camera.status", data={}, state=change) is None
    live_redis.hset(key, "~baseline", "1")
    assert events.event_publish(type="camera.status", data={}, state=change) == 1


@pytest.mark.django_db(transaction=True)
def test_events_wait_for_the_commit_and_vanish_with_a_rollback(live_redis):
    with transaction.atomic():
        events.event_publish_on_commit(type="alert.raised", data={"n": "kept"})
        assert stream_entries(live_redis) == []
    with transaction.atomic():
        events.event_publish_on_commit(type="alert.raised", data={"n": "rolled back"})
        transaction.set_rollback(True)

    assert [data for _, _, data in stream_entries(live_redis)] == [{"n": "kept"}]


def test_with_redis_down_publishing_returns_none_fast_and_pauses(live_redis, settings):
    settings.LIVE_EVENTS_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    started = time.monotonic()
    first = events.event_publish(type="alert.raised", data={})
    assert first is None
    assert events.publishing_paused()
    # While paused, publishers do not even try: a Redis outage costs one failed connect per pause
    for _ in range(100):
        assert events.event_publish(type="alert.raised", data={}) is None
    assert time.monotonic() - started < 2
    with pytest.raises(events.LiveEventsUnavailable):
        events.last_event_id()
