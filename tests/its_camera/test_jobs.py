"""The one job runner (its_camera.jobs): every beat job locked, recorded, counted and alerted the same way; the
watchdog notices a job that stopped succeeding (a dead beat or worker) without beat's help."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from prometheus_client.parser import text_string_to_metric_families

from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.models import Alert
from its_camera.choices import JobOutcome
from its_camera.db.locks import lock_key
from its_camera.jobs import JOB_RUNS, JobResult, beat_job, job_lock_name, job_statuses, jobs_registered, jobs_watchdog
from its_camera.models import JobRun
from its_camera.tasks import purge_job_runs

pytestmark = pytest.mark.django_db

# A fixed clock: the last minutes of a month. Before any real run's wall-clock start, so purging "older than
# 30 days before T0" can never reach the run doing the purge.
T0 = datetime(2026, 1, 31, 23, 55, tzinfo=UTC)


class Boom(Exception):
    pass


class Expected(Exception):
    pass


calls: list[dict] = []


@beat_job(name="tests.sample_job", every=timedelta(minutes=5), severity="warning", expected_errors=(Expected,))
def sample_job(*, now: datetime, fail: str = "", rows: int = 3) -> JobResult:
    calls.append({"now": now, "fail": fail})
    if fail == "boom":
        raise Boom("the disk is full")
    if fail == "expected":
        raise Expected("redis unavailable")
    if fail == "partly":
        return JobResult(rows=1, summary={"done": 1}, error="archive run 7: checksum mismatch")
    return JobResult(rows=rows, summary={"done": rows})


def job_alert(kind: str = AlertKind.JOB_FAILED) -> Alert:
    return Alert.objects.get(kind=kind, subject="tests.sample_job")


def test_every_beat_job_of_the_platform_goes_through_the_runner():
    # The jobs the issue names and those added since: each is registered by beat_job, so none has its own skeleton
    expected = {
        "archival.tasks.ensure_partitions",
        "archival.tasks.apply_retention",
        "archival.tasks.sweep_default_partitions",
        "telemetry.tasks.refresh_rollups",
        "cameras.tasks.raise_stale_camera_alerts",
        "cameras.publish_live_status",
        "telemetry.tasks.purge_idempotency_keys",
        "its_camera.tasks.purge_job_runs",
    }
    assert expected <= set(jobs_registered())
    # and every job a migration scheduled in beat is one of them
    scheduled = set(PeriodicTask.objects.exclude(task="celery.backend_cleanup").values_list("task", flat=True))
    assert scheduled <= set(jobs_registered())


def test_a_run_is_recorded_with_its_rows_duration_and_outcome_and_counted():
    before = JOB_RUNS.labels(job="tests.sample_job", outcome="succeeded")._value.get()

    result = sample_job(now=T0.isoformat(), rows=7)

    run = JobRun.objects.get()
    assert (run.job, run.outcome, run.rows, run.summary, run.error) == (
        "tests.sample_job", JobOutcome.SUCCEEDED, 7, {"done": 7}, "",
    )  # fmt: skip
    assert run.finished_at >= run.started_at
    assert run.duration_ms is not None
    assert result == {"job_run": run.pk, "outcome": "succeeded", "rows": 7, "done": 7}
    assert calls[-1]["now"] == T0  # the pinned clock reaches the work
    assert JOB_RUNS.labels(job="tests.sample_job", outcome="succeeded")._value.get() == before + 1


def test_a_failure_is_recorded_raises_job_failed_with_the_jobs_severity_and_the_next_success_resolves_it():
    # When the work raises
    with pytest.raises(Boom):
        sample_job(now=T0.isoformat(), fail="boom")

    # Then the run is failed with the error, and a job_failed alert names the job
    run = JobRun.objects.get()
    assert (run.outcome, run.error) == (JobOutcome.FAILED, "Boom: the disk is full")
    alert = job_alert()
    assert (alert.state, alert.severity) == (AlertState.OPEN, AlertSeverity.WARNING)
    assert "the disk is full" in alert.message
    assert alert.details["job_run"] == run.pk

    # When it fails again, the same alert is updated, not duplicated; and the next success resolves it
    with pytest.raises(Boom):
        sample_job(now=T0.isoformat(), fail="boom")
    assert Alert.objects.filter(kind=AlertKind.JOB_FAILED).count() == 1
    sample_job(now=T0.isoformat())
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_run_that_completes_with_an_error_and_an_expected_error_both_fail_without_a_traceback_to_celery():
    partly = sample_job(now=T0.isoformat(), fail="partly")
    expected = sample_job(now=T0.isoformat(), fail="expected")

    assert (partly["outcome"], expected["outcome"]) == ("failed", "failed")
    assert list(JobRun.objects.order_by("id").values_list("outcome", "error")) == [
        ("failed", "archive run 7: checksum mismatch"),
        ("failed", "Expected: redis unavailable"),
    ]
    assert job_alert().state == AlertState.OPEN


def test_a_second_run_while_the_lock_is_held_is_skipped_and_does_no_work():
    calls.clear()
    params = connection.get_connection_params()
    params.pop("options", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(job_lock_name("tests.sample_job"))])
        result = sample_job(now=T0.isoformat())
        other.execute("SELECT pg_advisory_unlock(%s)", [lock_key(job_lock_name("tests.sample_job"))])

    assert result["outcome"] == "skipped"
    assert calls == []
    assert JobRun.objects.get().summary == {"reason": "another run holds the lock"}


def every(minutes: int) -> IntervalSchedule:
    return IntervalSchedule.objects.create(every=minutes, period=IntervalSchedule.MINUTES)


def succeeded(job: str, at: datetime) -> JobRun:
    return JobRun.objects.create(job=job, outcome=JobOutcome.SUCCEEDED, started_at=at, finished_at=at, duration_ms=5)


def test_the_watchdog_raises_job_overdue_past_the_multiple_of_the_beat_schedule_and_resolves_it(settings):
    # Given the job scheduled every 5 minutes in beat, last successful at T0, and an allowance of 3 x the schedule
    settings.JOB_OVERDUE_MULTIPLE = 3
    settings.JOB_OVERDUE_MIN_SECONDS = 60
    PeriodicTask.objects.create(name="sample", task="tests.sample_job", interval=every(5))
    succeeded("tests.sample_job", T0)

    # When the watchdog looks within the allowance, nothing is overdue
    assert "tests.sample_job" not in jobs_watchdog(now=T0 + timedelta(minutes=14)).overdue
    assert not Alert.objects.filter(kind=AlertKind.JOB_OVERDUE, subject="tests.sample_job").exists()

    # When beat (or the worker) has been dead for longer than 3 x 5 minutes
    result = jobs_watchdog(now=T0 + timedelta(minutes=16))

    # Then job_overdue is open for that job, naming its last success
    assert "tests.sample_job" in result.overdue
    alert = job_alert(AlertKind.JOB_OVERDUE)
    assert (alert.state, alert.severity) == (AlertState.OPEN, AlertSeverity.CRITICAL)
    assert alert.details == {"last_success_at": T0.isoformat(), "schedule_seconds": 300.0}
    # a second look updates the same alert
    jobs_watchdog(now=T0 + timedelta(minutes=17))
    assert Alert.objects.filter(kind=AlertKind.JOB_OVERDUE, subject="tests.sample_job").count() == 1

    # When the job succeeds again, the success itself resolves it
    sample_job(now=(T0 + timedelta(minutes=18)).isoformat())
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_schedule_comes_from_beat_as_operators_edit_it_crontab_and_disabled_included(settings):
    settings.JOB_OVERDUE_MULTIPLE = 2
    daily = CrontabSchedule.objects.create(minute="30", hour="2", timezone="UTC")
    PeriodicTask.objects.create(name="sample", task="tests.sample_job", crontab=daily)
    succeeded("tests.sample_job", T0)

    status = {s.job: s for s in job_statuses(now=T0 + timedelta(days=1))}["tests.sample_job"]
    assert status.schedule == timedelta(days=1)
    assert not status.overdue
    assert {s.job: s for s in job_statuses(now=T0 + timedelta(days=2, minutes=1))}["tests.sample_job"].overdue

    # A job an operator disabled in beat is not expected to run
    PeriodicTask.objects.filter(name="sample").update(enabled=False)
    disabled = {s.job: s for s in job_statuses(now=T0 + timedelta(days=30))}["tests.sample_job"]
    assert (disabled.schedule, disabled.overdue) == (None, False)


def test_a_job_that_never_ran_is_overdue_counted_from_when_it_was_scheduled(settings):
    # Given a fresh install whose beat never started
    settings.JOB_OVERDUE_MULTIPLE = 3
    PeriodicTask.objects.create(name="sample", task="tests.sample_job", interval=every(1))
    PeriodicTask.objects.filter(name="sample").update(date_changed=T0)

    # Then it is on time for the first minutes and overdue after the allowance (at least JOB_OVERDUE_MIN_SECONDS)
    assert not {s.job: s for s in job_statuses(now=T0 + timedelta(minutes=1))}["tests.sample_job"].overdue
    assert not {s.job: s for s in job_statuses(now=T0 + timedelta(minutes=3))}["tests.sample_job"].overdue
    assert {s.job: s for s in job_statuses(now=T0 + timedelta(minutes=3, seconds=1))}["tests.sample_job"].overdue


def test_the_watchdog_command_runs_once_and_status_lists_every_job(settings, capsys):
    settings.JOB_OVERDUE_MIN_SECONDS = 60
    PeriodicTask.objects.create(name="sample", task="tests.sample_job", interval=every(1))
    PeriodicTask.objects.filter(name="sample").update(date_changed=datetime(2020, 1, 1, tzinfo=UTC))

    call_command("jobs", "watchdog")
    call_command("jobs", "status")

    out = capsys.readouterr().out
    assert "overdue: " in out
    assert "tests.sample_job" in out
    assert job_alert(AlertKind.JOB_OVERDUE).state == AlertState.OPEN
    assert all(name in out for name in jobs_registered())


def test_metrics_expose_seconds_since_each_jobs_last_success_and_whether_it_is_overdue(client):
    PeriodicTask.objects.create(name="sample", task="tests.sample_job", interval=every(5))
    sample_job()

    response = client.get("/metrics")

    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    assert 0 <= values[("its_job_seconds_since_success", (("job", "tests.sample_job"),))] < 60
    assert values[("its_job_overdue", (("job", "tests.sample_job"),))] == 0


def test_job_history_in_the_admin_filters_by_job_and_outcome_and_shows_each_jobs_status(admin_client):
    sample_job(now=T0.isoformat())
    sample_job(now=T0.isoformat(), fail="partly")

    page = admin_client.get("/admin/its_camera/jobrun/", {"job": "tests.sample_job", "outcome": "failed"})

    assert page.status_code == 200
    assert list(page.context["cl"].result_list.values_list("outcome", flat=True)) == ["failed"]
    body = page.content.decode()
    assert "Beat jobs now" in body
    assert "archival.tasks.apply_retention" in body


def test_purge_forgets_job_runs_past_their_retention_in_batches(settings):
    settings.JOB_RUN_RETENTION_DAYS = 30
    for days in (31, 40, 29, 1):
        succeeded("tests.sample_job", T0 - timedelta(days=days))

    result = purge_job_runs(now=T0.isoformat())

    assert (result["outcome"], result["rows"]) == ("succeeded", 2)
    assert sorted((T0 - run.started_at).days for run in JobRun.objects.filter(job="tests.sample_job")) == [1, 29]
