"""The beat job: locked, records its outcome, alerts on lag and on failure, scheduled by a migration, and
the lag fails the rollups health check."""

import importlib
from datetime import timedelta

import psycopg
import pytest
from django.apps import apps as django_apps
from django.db import connection
from django_celery_beat.models import PeriodicTask

from cameras.choices import AlertKind, AlertState
from cameras.models import Alert
from its_camera.db.locks import lock_key
from its_camera.jobs import job_lock_name
from telemetry import tasks
from telemetry.models import FrameHourlyRollup, RollupWatermark

from .test_rollups import start_watermark

pytestmark = pytest.mark.django_db


def test_the_migration_schedules_the_refresh_every_minute_and_its_reverse_removes_it():
    # The migration's own functions, run here: rows a data migration made may have been wiped by an earlier
    # transactional test's flush, so the test does not trust them to be there.
    migration = importlib.import_module("telemetry.migrations.0005_rollup_refresh_schedule")
    PeriodicTask.objects.filter(task=tasks.REFRESH_ROLLUPS).delete()

    migration.create_schedule(django_apps, None)
    migration.create_schedule(django_apps, None)  # again: an operator's row is never duplicated

    task = PeriodicTask.objects.get(task=tasks.REFRESH_ROLLUPS)
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "minutes")
    migration.delete_schedule(django_apps, None)
    assert not PeriodicTask.objects.filter(task=tasks.REFRESH_ROLLUPS).exists()


def test_a_run_rolls_up_new_frames_and_records_its_outcome(fleet, now, make_frames):
    # Given frames since the watermark
    start_watermark(now - timedelta(minutes=30))
    make_frames(fleet.camera_ids, start=now - timedelta(minutes=30), end=now, per_camera=50)

    # When the job runs
    outcome = tasks.refresh_rollups(now=now.isoformat())

    # Then it rolled them up, moved the watermark and recorded the run on it
    assert outcome["outcome"] == "succeeded"
    assert outcome["raw_frames"] == 200
    assert outcome["lag_seconds"] == 0
    assert sum(FrameHourlyRollup.objects.filter(scope="fleet").values_list("frames", flat=True)) == 200
    watermark = RollupWatermark.objects.get()
    assert watermark.watermark == now
    assert watermark.last_run_raw_rows == 200
    assert watermark.last_run_rows == outcome["rows"] > 0
    assert watermark.last_error == ""


def test_a_second_run_while_one_holds_the_lock_does_nothing(fleet, now, make_frames):
    # Given another session holding the job's advisory lock
    start_watermark(now - timedelta(minutes=30))
    params = connection.get_connection_params()
    params.pop("options", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(job_lock_name(tasks.REFRESH_ROLLUPS))])

        # When the job runs
        outcome = tasks.refresh_rollups(now=now.isoformat())

    # Then it skips without touching the watermark
    assert outcome["outcome"] == "skipped"
    assert RollupWatermark.objects.get().watermark == now - timedelta(minutes=30)


def test_lag_past_the_threshold_raises_the_rollup_lag_alert_and_catching_up_resolves_it(fleet, now, settings):
    # Given a watermark two hours behind and a run allowed one one-hour step
    settings.ROLLUP_LAG_ALERT_SECONDS = 900
    settings.ROLLUP_MAX_STEPS_PER_RUN = 1
    start_watermark(now.replace(minute=0) - timedelta(hours=2))

    # When the job runs
    outcome = tasks.refresh_rollups(now=now.isoformat())

    # Then the watermark is still behind by more than the threshold and the alert is open
    assert outcome["caught_up"] is False
    alert = Alert.objects.get(kind=AlertKind.ROLLUP_LAG, state=AlertState.OPEN)
    assert alert.details["lag_seconds"] > 900

    # When later runs catch up
    tasks.refresh_rollups(now=now.isoformat())
    tasks.refresh_rollups(now=now.isoformat())

    # Then the alert is resolved
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_failing_run_raises_a_job_failed_alert_and_records_the_error(fleet, now, monkeypatch):
    start_watermark(now - timedelta(minutes=30))

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tasks, "rollups_refresh", broken)
    with pytest.raises(RuntimeError):
        tasks.refresh_rollups(now=now.isoformat())

    alert = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject=tasks.REFRESH_ROLLUPS)
    assert "disk full" in alert.message
    assert "disk full" in RollupWatermark.objects.get().last_error

    # and the next good run resolves it
    monkeypatch.undo()
    tasks.refresh_rollups(now=now.isoformat())
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_rollups_health_check_reports_the_lag(fleet, settings):
    # The check runs in its own thread and connection under /health/ready (tests/its_camera/test_health.py);
    # here it runs on the test's connection, which sees the uncommitted watermark.
    from django.utils import timezone

    from its_camera.health import registered_checks
    from telemetry.monitoring import rollups_ready

    # Before the first run
    assert rollups_ready() == "not started"

    # Behind by an hour: failing, but not critical by default (readiness degraded, not 503)
    settings.ROLLUP_LAG_ALERT_SECONDS = 900
    start_watermark(timezone.now() - timedelta(hours=1))
    with pytest.raises(RuntimeError, match="rollups 36"):
        rollups_ready()
    assert registered_checks()["rollups"].is_critical() is False

    # Critical (503) when the operator says so
    settings.ROLLUP_LAG_FAILS_READINESS = True
    assert registered_checks()["rollups"].is_critical() is True


def test_the_rollups_command_shows_status_refreshes_and_rebuilds_a_range(fleet, now, make_frames):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("rollups", "status", stdout=out)
    assert "have not run" in out.getvalue()

    # Given frames from three hours ago, behind a watermark that has passed them
    old = now.replace(minute=0) - timedelta(hours=3)
    make_frames([fleet.cameras[0].id], start=old, end=old + timedelta(minutes=30), per_camera=12)
    start_watermark(now)

    # When that range is rebuilt by hand
    out = StringIO()
    call_command("rollups", "rebuild", "--since", old.isoformat(), "--until", (old + timedelta(hours=1)).isoformat(),
                 stdout=out)  # fmt: skip

    # Then its rollups exist and the watermark did not move
    assert "12 raw frames" in out.getvalue()
    assert FrameHourlyRollup.objects.get(scope="fleet", bucket=old).frames == 12
    assert RollupWatermark.objects.get().watermark == now
    out = StringIO()
    call_command("rollups", "status", stdout=out)
    assert f"watermark {now.isoformat()}" in out.getvalue()
    with pytest.raises(CommandError, match="time zone"):
        call_command("rollups", "rebuild", "--since", "2026-11-01T00:00:00", "--until", "2026-11-02T00:00:00Z")
