"""camera_offline alerts: threshold, hysteresis, flapping, idempotence, bounds, the beat task."""

import importlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import override_settings
from django_celery_beat.models import PeriodicTask

from cameras.choices import AlertKind, AlertSeverity, AlertState, CameraStatus
from cameras.models import Alert
from cameras.services.offline_alerts import OfflinePolicy, camera_offline_alerts_refresh
from cameras.tasks import RAISE_STALE_CAMERA_ALERTS, raise_stale_camera_alerts
from its_camera.db.locks import advisory_lock
from its_camera.jobs import job_lock_name
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = OfflinePolicy(
    offline_after=timedelta(minutes=5), online_within=timedelta(seconds=60), recovery=timedelta(minutes=5)
)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def refresh(at: datetime, batch_size: int = 1000):
    return camera_offline_alerts_refresh(now=at, policy=POLICY, batch_size=batch_size)


def seen(camera, at: datetime) -> None:
    camera.last_seen_at = at
    camera.save(update_fields=["last_seen_at"])


def offline_alerts(camera=None):
    alerts = Alert.objects.filter(kind=AlertKind.CAMERA_OFFLINE)
    return alerts.filter(camera=camera) if camera is not None else alerts


def test_a_camera_silent_past_the_threshold_gets_one_alert():
    camera = make_camera(name="Quiet", last_seen_at=T0)

    first = refresh(T0 + minutes(6))
    second = refresh(T0 + minutes(7))
    third = refresh(T0 + minutes(30))

    assert (first.raised, second.raised, third.raised) == (1, 0, 0)
    alert = offline_alerts(camera).get()
    assert alert.state == AlertState.OPEN
    assert "Quiet" in alert.message
    assert alert.details["flap_count"] == 0
    assert alert.details["last_seen_at"] == T0.isoformat()


def test_a_blip_shorter_than_the_threshold_opens_nothing():
    camera = make_camera(last_seen_at=T0)

    refresh(T0 + minutes(4))
    seen(camera, T0 + minutes(4.5))
    refresh(T0 + minutes(5))
    refresh(T0 + minutes(9))

    assert not offline_alerts().exists()


def test_a_never_seen_camera_counts_from_its_registration():
    camera = make_camera(last_seen_at=None)
    registered = camera.created_at

    assert refresh(registered + minutes(4)).raised == 0
    assert refresh(registered + minutes(6)).raised == 1
    assert offline_alerts(camera).get().details["last_seen_at"] is None


def test_the_alert_resolves_only_after_the_camera_stayed_back_for_the_recovery_period():
    camera = make_camera(last_seen_at=T0)
    refresh(T0 + minutes(10))  # down: alert opens

    seen(camera, T0 + minutes(11))
    started = refresh(T0 + minutes(11))
    seen(camera, T0 + minutes(13))
    refresh(T0 + minutes(13))
    still_open = offline_alerts(camera).get()
    seen(camera, T0 + minutes(16))
    resolved = refresh(T0 + minutes(16))

    assert started.recovering == 1
    assert still_open.state == AlertState.OPEN
    assert still_open.details["recovering_since"] == (T0 + minutes(11)).isoformat()
    assert resolved.resolved == 1
    alert = offline_alerts(camera).get()
    assert (alert.state, alert.resolved_by, alert.resolved_at) == (AlertState.RESOLVED, "system", T0 + minutes(16))


def test_a_flapping_camera_keeps_one_alert_and_counts_its_flaps():
    # Given a camera that comes back for a minute and drops again, four times over
    camera = make_camera(last_seen_at=T0)
    refresh(T0 + minutes(6))
    at = T0 + minutes(6)
    for _ in range(4):
        at += minutes(1)
        seen(camera, at)
        refresh(at)  # back: recovery starts
        at += minutes(2)
        refresh(at)  # silent again for 2 minutes: recovery cut short

    # Then there is still a single alert, open, with the flaps counted and the severity raised
    alert = offline_alerts(camera).get()
    assert alert.state == AlertState.OPEN
    assert alert.details["flap_count"] == 4
    assert "recovering_since" not in alert.details
    assert "flapping" in alert.message
    assert alert.severity == AlertSeverity.CRITICAL


def test_after_a_resolution_a_new_outage_opens_a_new_alert():
    camera = make_camera(last_seen_at=T0)
    refresh(T0 + minutes(6))
    seen(camera, T0 + minutes(7))
    refresh(T0 + minutes(7))
    seen(camera, T0 + minutes(12))
    refresh(T0 + minutes(12))  # resolved

    refresh(T0 + minutes(20))  # silent 8 minutes

    assert list(offline_alerts(camera).order_by("id").values_list("state", flat=True)) == ["resolved", "open"]


def test_cameras_in_maintenance_or_inactive_are_not_watched_and_their_alerts_resolve():
    maintained = make_camera(last_seen_at=T0)
    retired = make_camera(last_seen_at=T0)
    make_camera(last_seen_at=T0, status=CameraStatus.MAINTENANCE)
    make_camera(last_seen_at=T0, is_active=False)
    refresh(T0 + minutes(6))
    assert offline_alerts().count() == 2

    maintained.status = CameraStatus.MAINTENANCE
    maintained.save()
    retired.is_active = False
    retired.save()
    result = refresh(T0 + minutes(7))

    assert result.resolved == 2
    assert not offline_alerts().filter(state__in=["open", "acknowledged"]).exists()


def test_an_acknowledged_alert_is_not_duplicated_and_resolves_when_back():
    camera = make_camera(last_seen_at=T0)
    refresh(T0 + minutes(6))
    offline_alerts(camera).update(state=AlertState.ACKNOWLEDGED)

    refresh(T0 + minutes(20))
    seen(camera, T0 + minutes(21))
    refresh(T0 + minutes(21))
    seen(camera, T0 + minutes(27))
    refresh(T0 + minutes(27))

    assert offline_alerts(camera).count() == 1
    assert offline_alerts(camera).get().state == AlertState.RESOLVED


def test_each_pass_is_bounded_by_the_batch_size():
    for _ in range(5):
        make_camera(last_seen_at=T0)

    first = refresh(T0 + minutes(6), batch_size=2)
    second = refresh(T0 + minutes(6), batch_size=2)
    third = refresh(T0 + minutes(6), batch_size=2)

    assert [(r.raised, r.more) for r in (first, second, third)] == [(2, True), (2, True), (1, False)]
    assert offline_alerts().count() == 5


@override_settings(
    CAMERA_OFFLINE_AFTER_SECONDS=300,
    CAMERA_ONLINE_WITHIN_SECONDS=60,
    CAMERA_OFFLINE_RECOVERY_SECONDS=300,
    CAMERA_ALERTS_BATCH_SIZE=2,
)
def test_the_beat_task_uses_settings_loops_over_batches_and_is_idempotent():
    cameras = [make_camera(last_seen_at=T0) for _ in range(5)]
    make_camera(last_seen_at=T0 + minutes(4))  # 2 minutes silent at T0+6: a blip

    outcome = raise_stale_camera_alerts(now=(T0 + minutes(6)).isoformat())
    again = raise_stale_camera_alerts(now=(T0 + minutes(6)).isoformat())

    assert outcome["outcome"] == "succeeded"
    assert {key: outcome[key] for key in ("rows", "raised", "flapped", "recovering", "resolved", "more")} == {
        "rows": 5, "raised": 5, "flapped": 0, "recovering": 0, "resolved": 0, "more": False,
    }  # fmt: skip
    assert again["raised"] == 0
    assert set(offline_alerts().values_list("camera_id", flat=True)) == {camera.pk for camera in cameras}


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_skips_while_another_run_holds_the_lock():
    make_camera(last_seen_at=T0)
    holding, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with advisory_lock(job_lock_name(RAISE_STALE_CAMERA_ALERTS)):
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    holding.wait(10)
    try:
        outcome = raise_stale_camera_alerts(now=(T0 + minutes(6)).isoformat())
    finally:
        release.set()
        thread.join()

    assert outcome["outcome"] == "skipped"
    assert not offline_alerts().exists()


def test_a_failing_run_raises_a_job_failed_alert_and_the_next_good_run_resolves_it(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database exploded")

    monkeypatch.setattr("cameras.tasks.camera_offline_alerts_refresh", broken)
    with pytest.raises(RuntimeError):
        raise_stale_camera_alerts(now=T0.isoformat())
    failed = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject=RAISE_STALE_CAMERA_ALERTS)
    assert failed.state == AlertState.OPEN
    assert "database exploded" in failed.message

    monkeypatch.undo()
    raise_stale_camera_alerts(now=T0.isoformat())

    failed.refresh_from_db()
    assert failed.state == AlertState.RESOLVED


def test_a_fresh_install_schedules_the_task_every_minute():
    # Run the data migration's own function on an empty schedule table rather than trusting the rows
    # it left at set-up: any transactional test's flush wipes those, whatever order tests run in.
    schedule_migration = importlib.import_module("cameras.migrations.0004_stale_camera_alerts_schedule")
    PeriodicTask.objects.filter(task=RAISE_STALE_CAMERA_ALERTS).delete()

    schedule_migration.create_schedule(django_apps, None)
    schedule_migration.create_schedule(django_apps, None)  # again: the operator's entry is never duplicated

    task = PeriodicTask.objects.get(task=RAISE_STALE_CAMERA_ALERTS)
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "minutes")
