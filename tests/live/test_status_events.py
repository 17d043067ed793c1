"""Where live events come from: heartbeats, the connection-status sweep (beat task) and alert changes."""

import importlib
import socket
from datetime import timedelta

import psycopg
import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from cameras.choices import AlertKind, AlertState
from cameras.models import Alert, Camera
from cameras.services.alerts import alert_acknowledge, alert_raise, alert_resolve
from cameras.services.cameras import camera_heartbeat
from cameras.status_events import (
    BASELINE_FIELD,
    PUBLISH_LIVE_STATUS,
    STATE_KEY,
    camera_status_sweep,
    publish_live_status,
)
from its_camera.db.locks import lock_key
from its_camera.jobs import JOB_RUNS, job_lock_name
from tests.cameras.factories import make_camera, make_zone

from .conftest import stream_entries

pytestmark = pytest.mark.django_db


def seen(seconds_ago: float | None):
    return None if seconds_ago is None else timezone.now() - timedelta(seconds=seconds_ago)


def camera_events(live_redis) -> list[tuple[str, dict]]:
    return [(kind, data) for _, kind, data in stream_entries(live_redis) if kind.startswith("camera.")]


def test_the_first_sweep_records_a_baseline_and_publishes_only_a_reset(live_redis):
    # Given three active cameras and one inactive, and nothing published yet
    cameras = [make_camera(last_seen_at=seen(s)) for s in (5, 60, None)]
    make_camera(is_active=False, last_seen_at=seen(5))

    # When the sweep runs for the first time
    result = camera_status_sweep()

    # Then it records every active camera silently and tells subscribers to load a snapshot
    assert result.baseline
    assert result.cameras == 3
    assert result.published == 0
    assert [kind for _, kind, _ in stream_entries(live_redis)] == ["fleet.reset"]
    recorded = {key.decode() for key in live_redis.hkeys(STATE_KEY)}
    assert recorded == {str(camera.pk) for camera in cameras} | {BASELINE_FIELD}


def test_the_sweep_publishes_connection_changes_by_the_passing_of_time_once(live_redis):
    # Given a baseline with a streaming camera
    zone = make_zone(name="Harbour")
    camera = make_camera(zone=zone, last_seen_at=seen(5))
    camera_status_sweep()

    # When 40 s pass without a heartbeat, then the sweep runs twice
    Camera.objects.filter(pk=camera.pk).update(last_seen_at=seen(40))
    first = camera_status_sweep()
    second = camera_status_sweep()

    # Then exactly one event says streaming -> recent, with the zone for filtering
    assert (first.published, second.published) == (1, 0)
    ((kind, data),) = camera_events(live_redis)
    assert kind == "camera.status"
    assert (data["camera_id"], data["zone_id"], data["name"]) == (str(camera.pk), str(zone.pk), camera.name)
    assert (data["previous"]["connection_status"], data["connection_status"]) == ("streaming", "recent")

    # And after 5 minutes, recent -> stale
    Camera.objects.filter(pk=camera.pk).update(last_seen_at=seen(400))
    camera_status_sweep()
    assert [data["connection_status"] for _, data in camera_events(live_redis)] == ["recent", "stale"]


def test_the_sweep_publishes_status_edits_zone_moves_and_removals(live_redis):
    north, south = make_zone(name="North"), make_zone(name="South")
    moved = make_camera(zone=north, last_seen_at=seen(5))
    edited = make_camera(zone=north, last_seen_at=seen(5))
    retired = make_camera(zone=north, last_seen_at=seen(5))
    camera_status_sweep()

    Camera.objects.filter(pk=moved.pk).update(zone=south)
    Camera.objects.filter(pk=edited.pk).update(status="maintenance")
    Camera.objects.filter(pk=retired.pk).update(is_active=False)
    result = camera_status_sweep()

    assert (result.published, result.removed) == (2, 1)
    by_camera = {data["camera_id"]: (kind, data) for kind, data in camera_events(live_redis)}
    kind, data = by_camera[str(moved.pk)]
    assert (data["previous"]["zone_id"], data["zone_id"]) == (str(north.pk), str(south.pk))
    kind, data = by_camera[str(edited.pk)]
    assert (data["previous"]["status"], data["status"]) == ("offline", "maintenance")
    kind, data = by_camera[str(retired.pk)]
    assert kind == "camera.removed"
    assert data["connection_status"] is None
    assert not live_redis.hexists(STATE_KEY, str(retired.pk))


def test_the_sweep_is_bounded_and_continues_where_it_stopped(live_redis):
    cameras = sorted((make_camera(last_seen_at=seen(5)) for _ in range(5)), key=lambda camera: camera.pk)
    camera_status_sweep()
    Camera.objects.update(last_seen_at=seen(100))

    first = camera_status_sweep(batch_size=2, max_batches=1)
    second = camera_status_sweep(batch_size=2, max_batches=1)
    third = camera_status_sweep(batch_size=2, max_batches=1)

    assert [(r.cameras, r.published, r.more) for r in (first, second, third)] == [
        (2, 2, True),
        (2, 2, True),
        (1, 1, False),
    ]
    assert [data["camera_id"] for _, data in camera_events(live_redis)] == [str(camera.pk) for camera in cameras]


def test_a_heartbeat_from_a_stale_camera_publishes_at_once_and_steady_ones_publish_nothing(
    live_redis, django_capture_on_commit_callbacks
):
    camera = make_camera(last_seen_at=None)
    camera_status_sweep()

    with django_capture_on_commit_callbacks(execute=True):
        camera_heartbeat(camera_id=camera.pk, status="online", fps=25)
    with django_capture_on_commit_callbacks(execute=True):
        camera_heartbeat(camera_id=camera.pk, status="online", fps=24)

    ((_kind, data),) = camera_events(live_redis)
    assert (data["previous"]["connection_status"], data["connection_status"]) == ("stale", "streaming")
    assert (data["previous"]["status"], data["status"]) == ("offline", "online")
    # And the sweep agrees, so it publishes nothing more
    assert camera_status_sweep().published == 0


def test_heartbeats_publish_nothing_before_the_baseline(live_redis, django_capture_on_commit_callbacks):
    camera = make_camera(last_seen_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        camera_heartbeat(camera_id=camera.pk, status="online")

    assert stream_entries(live_redis) == []


def test_alert_changes_are_published(live_redis, django_capture_on_commit_callbacks):
    zone = make_zone(name="Docks")
    camera = make_camera(zone=zone)

    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone")
        alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="still gone")  # an update: not new
        alert_acknowledge(alert=alert, acknowledged_by="operator")
        alert_resolve(kind=AlertKind.CAMERA_OFFLINE, camera=camera)

    published = [(kind, data["alert_id"], data["state"]) for _, kind, data in stream_entries(live_redis)]
    assert published == [
        ("alert.raised", alert.pk, "open"),
        ("alert.acknowledged", alert.pk, "acknowledged"),
        ("alert.resolved", alert.pk, "resolved"),
    ]
    raised = stream_entries(live_redis)[0][2]
    assert (raised["camera_id"], raised["zone_id"], raised["kind"]) == (str(camera.pk), str(zone.pk), "camera_offline")


def test_the_task_skips_while_another_run_holds_the_lock(live_redis):
    params = connection.get_connection_params()
    params.pop("options", None)
    with psycopg.connect(**params, autocommit=True) as other_session:
        other_session.execute("SELECT pg_advisory_lock(%s)", [lock_key(job_lock_name(PUBLISH_LIVE_STATUS))])
        assert publish_live_status()["outcome"] == "skipped"
        # Released explicitly: a closed session's locks go only when its backend has exited, a moment later.
        other_session.execute("SELECT pg_advisory_unlock(%s)", [lock_key(job_lock_name(PUBLISH_LIVE_STATUS))])
    assert publish_live_status()["baseline"] is True


def test_the_task_raises_an_alert_while_redis_is_down_and_resolves_it_after(live_redis, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    settings.LIVE_EVENTS_REDIS_URL = f"redis://127.0.0.1:{closed}/0"

    failed_before = JOB_RUNS.labels(job=PUBLISH_LIVE_STATUS, outcome="failed")._value.get()
    assert publish_live_status()["outcome"] == "failed"
    assert JOB_RUNS.labels(job=PUBLISH_LIVE_STATUS, outcome="failed")._value.get() == failed_before + 1
    alert = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject=PUBLISH_LIVE_STATUS)
    assert alert.state == AlertState.OPEN

    settings.LIVE_EVENTS_REDIS_URL = ""
    assert publish_live_status()["outcome"] == "succeeded"
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_data_migration_schedules_the_task_every_10_seconds_once():
    # Run the migration's function itself: rows that migrations made do not survive other tests' flushes.
    migration = importlib.import_module("cameras.migrations.0005_live_status_schedule")
    PeriodicTask.objects.filter(task=PUBLISH_LIVE_STATUS).delete()

    migration.create_schedule(django_apps, None)
    migration.create_schedule(django_apps, None)  # re-running never adds a second one

    task = PeriodicTask.objects.get(task=PUBLISH_LIVE_STATUS)
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (10, "seconds")
    migration.delete_schedule(django_apps, None)
    assert not PeriodicTask.objects.filter(task=PUBLISH_LIVE_STATUS).exists()
