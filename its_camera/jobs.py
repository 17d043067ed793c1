"""One runner for every beat job: lock, record, measure, alert — and a watchdog that beat cannot silence.

A job is a plain function that does one bounded piece of work and says what it did (a `JobResult`);
`beat_job` registers it and makes it the Celery task beat sends. Every run goes through `job_run`:

1. the advisory lock `job:<name>` on a session of its own: a second run at the same time returns at once
   and is recorded as skipped;
2. a `JobRun` row: started, finished, duration, rows touched, outcome, summary, error;
3. the metric `its_job_runs_total{job, outcome}`;
4. the signals `job_failed` / `job_succeeded`. The kernel knows no alerts: the app that owns them (cameras)
   connects receivers at start-up that open a `job_failed` alert and resolve it on the next success.

The watchdog (`jobs_watchdog`) runs outside beat and the worker (`manage.py jobs watchdog --every 60`, its own
process), so a dead beat or a dead worker is noticed: a job whose last success is older than
`JOB_OVERDUE_MULTIPLE` times its schedule (read from its django-celery-beat entry, which operators edit) is
overdue, and the `job_overdue` / `job_on_time` signals open and resolve a `job_overdue` alert. `/metrics`
carries the seconds since each job's last success and whether it is overdue, read from the database at scrape
time, so Prometheus sees the same thing even when the watchdog process is down (deploy/prometheus/alerts.yml).

    @beat_job(name="telemetry.tasks.purge_idempotency_keys", every=timedelta(hours=1), severity="warning")
    def purge_idempotency_keys(*, now: datetime) -> JobResult:
        return JobResult(rows=idempotency_keys_purge(older_than=now - ttl))
"""

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db.models import Max
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from prometheus_client.core import Metric

from its_camera import metrics
from its_camera.choices import JobOutcome
from its_camera.db.locks import advisory_lock
from its_camera.models import JobRun

__all__ = [
    "BeatJob",
    "JobResult",
    "JobStatus",
    "beat_job",
    "job_failed",
    "job_lock_name",
    "job_on_time",
    "job_overdue",
    "job_run",
    "job_statuses",
    "job_succeeded",
    "jobs_registered",
    "jobs_watchdog",
]

logger = logging.getLogger(__name__)

# Sent with job=<name>, run=<JobRun>, error=<str>, severity=<"warning" | "critical">.
job_failed = Signal()
# Sent with job=<name>, run=<JobRun>.
job_succeeded = Signal()
# Sent by the watchdog with job=<name>, status=<JobStatus>.
job_overdue = Signal()
job_on_time = Signal()

JOB_RUNS = metrics.counter("its_job_runs_total", "Beat job runs by job and outcome.", ["job", "outcome"])


@dataclass
class JobResult:
    """What one run did. `error`: the run completed but part of its work failed (an archive run, say), so
    its outcome is failed. `skipped`: it did nothing on purpose, and why. `again`: work is left that the
    run's bound stopped it from doing; the runner queues the next run at once instead of waiting for beat."""

    rows: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    skipped: str = ""
    again: bool = False


Work = Callable[..., JobResult]


@dataclass(frozen=True)
class BeatJob:
    name: str  # the Celery task name, which is also the name of its beat entry's task
    every: timedelta  # the schedule its migration creates; the watchdog reads the live one from beat
    severity: str  # of its job_failed alert
    work: Work
    expected_errors: tuple[type[Exception], ...] = ()  # recorded and alerted, but not re-raised to Celery


_jobs: dict[str, BeatJob] = {}


def jobs_registered() -> dict[str, BeatJob]:
    """Every beat job, after importing each installed app's `tasks` module (as Celery's autodiscovery does),
    so a web process or the watchdog knows the jobs it never ran."""
    autodiscover_modules("tasks")
    return dict(_jobs)


def job_lock_name(name: str) -> str:
    """The advisory lock a job's runs hold; commands that must not overlap a job take the same one."""
    return f"job:{name}"


def beat_job(
    *, name: str, every: timedelta, severity: str = "critical", expected_errors: tuple[type[Exception], ...] = ()
) -> Callable[[Work], Task]:
    """Register `work(*, now, **options) -> JobResult` as the beat job `name` and return its Celery task.
    The task takes `now` as ISO 8601 (pins the clock for tests and replays) and the options as keywords."""

    def decorator(work: Work) -> Task:
        job = BeatJob(name=name, every=every, severity=severity, work=work, expected_errors=expected_errors)
        _jobs[name] = job

        @shared_task(name=name)
        def task(now: str | None = None, **options: Any) -> dict[str, Any]:
            at = datetime.fromisoformat(now) if now else None
            run, result = job_run(job=job, now=at, **options)
            if result is not None and result.again and at is None:
                task.apply_async(kwargs=options, countdown=1)
            return {"job_run": run.pk, "outcome": run.outcome, "rows": run.rows, **run.summary}

        task.__doc__ = work.__doc__
        return task

    return decorator


def job_run(*, job: BeatJob, now: datetime | None = None, **options: Any) -> tuple[JobRun, JobResult | None]:
    """Run `job` once through the lock, the record, the metric and the signals; see the module docstring.
    An exception from the work marks the run failed, sends `job_failed` and propagates (Celery logs it)
    unless it is one of the job's expected errors."""
    with advisory_lock(job_lock_name(job.name)) as acquired:
        started_at = timezone.now()
        if not acquired:
            logger.info("%s skipped: another run holds the lock", job.name)
            JOB_RUNS.labels(job=job.name, outcome=JobOutcome.SKIPPED).inc()
            run = JobRun.objects.create(
                job=job.name,
                outcome=JobOutcome.SKIPPED,
                started_at=started_at,
                finished_at=started_at,
                duration_ms=0,
                summary={"reason": "another run holds the lock"},
            )
            return run, None
        run = JobRun.objects.create(job=job.name, outcome=JobOutcome.RUNNING, started_at=started_at)
        started = time.perf_counter()
        try:
            result = job.work(now=now or started_at, **options)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:5000]
            if isinstance(exc, job.expected_errors):
                logger.warning("%s failed: %s", job.name, error)
            else:
                logger.exception("%s failed", job.name)
            _finish(run, outcome=JobOutcome.FAILED, started=started, error=error)
            job_failed.send(sender=BeatJob, job=job.name, run=run, error=error, severity=job.severity)
            if isinstance(exc, job.expected_errors):
                return run, None
            raise
        if result.skipped:
            outcome = JobOutcome.SKIPPED
            summary = {"reason": result.skipped, **result.summary}
        else:
            outcome = JobOutcome.FAILED if result.error else JobOutcome.SUCCEEDED
            summary = result.summary
        _finish(run, outcome=outcome, started=started, rows=result.rows, summary=summary, error=result.error)
        if outcome == JobOutcome.FAILED:
            job_failed.send(sender=BeatJob, job=job.name, run=run, error=result.error, severity=job.severity)
        elif outcome == JobOutcome.SUCCEEDED:
            job_succeeded.send(sender=BeatJob, job=job.name, run=run)
        if outcome != JobOutcome.SUCCEEDED or result.rows:
            logger.info("%s: %s, %d rows %s", job.name, outcome, result.rows, summary)
        return run, result


def _finish(
    run: JobRun,
    *,
    outcome: str,
    started: float,
    rows: int = 0,
    summary: dict[str, Any] | None = None,
    error: str = "",
) -> None:
    run.outcome = outcome
    run.rows = rows
    run.summary = summary or {}
    run.error = error
    run.finished_at = timezone.now()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    run.save(update_fields=["outcome", "rows", "summary", "error", "finished_at", "duration_ms"])
    JOB_RUNS.labels(job=run.job, outcome=outcome).inc()


# --- The watchdog ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    job: str
    schedule: timedelta | None  # None: its beat entry is disabled, so it is not expected to run
    last_success_at: datetime | None
    since: datetime | None  # what lateness is counted from: the last success, else when it was scheduled
    overdue: bool

    @property
    def deadline(self) -> datetime | None:
        if self.schedule is None or self.since is None:
            return None
        return self.since + _allowance(self.schedule)

    def seconds_since_success(self, now: datetime) -> float | None:
        return None if self.last_success_at is None else max(0.0, (now - self.last_success_at).total_seconds())


def _allowance(schedule: timedelta) -> timedelta:
    return max(schedule * settings.JOB_OVERDUE_MULTIPLE, timedelta(seconds=settings.JOB_OVERDUE_MIN_SECONDS))


def _crontab_period(cron: Any) -> timedelta:
    """The longest a crontab schedule waits between two firings (so a legitimately quiet job is never late):
    the widest gap between its firing minutes over a week; a coarse month or year when it names days of the
    month or months."""
    if len(cron.month_of_year) < 12:
        return timedelta(days=366)
    if len(cron.day_of_month) < 31:
        return timedelta(days=31)
    week = 7 * 24 * 60
    minutes = sorted(
        day * 1440 + hour * 60 + minute for day in cron.day_of_week for hour in cron.hour for minute in cron.minute
    )
    gaps = [later - earlier for earlier, later in itertools.pairwise(minutes)] + [minutes[0] + week - minutes[-1]]
    return timedelta(minutes=max(gaps))


def _beat_schedules(names: Iterable[str]) -> dict[str, tuple[timedelta | None, datetime]]:
    """Each job's period as its enabled beat entry says (None when disabled) and when the entry last changed."""
    from django_celery_beat.models import PeriodicTask

    schedules: dict[str, tuple[timedelta | None, datetime]] = {}
    entries = PeriodicTask.objects.filter(task__in=list(names)).select_related("interval", "crontab")
    for entry in entries.order_by("-enabled", "pk"):
        if entry.task in schedules:
            continue
        period: timedelta | None = None
        if entry.enabled and entry.interval is not None:
            period = entry.interval.schedule.run_every
        elif entry.enabled and entry.crontab is not None:
            period = _crontab_period(entry.crontab.schedule)
        schedules[entry.task] = (period, entry.date_changed)
    return schedules


def job_statuses(*, now: datetime | None = None) -> list[JobStatus]:
    """Every registered job: its schedule, last success and whether it is overdue. One query for the last
    successes (the (job, outcome, finished_at) index) and one for the beat entries."""
    now = now or timezone.now()
    registered = jobs_registered()
    names = sorted(registered)
    last_success = dict(
        JobRun.objects.filter(job__in=names, outcome=JobOutcome.SUCCEEDED)
        .values("job")
        .annotate(at=Max("finished_at"))
        .values_list("job", "at")
    )
    beat = _beat_schedules(names)
    statuses = []
    for name in names:
        period, scheduled_at = beat.get(name, (registered[name].every, None))
        since = last_success.get(name) or scheduled_at
        overdue = period is not None and since is not None and now > since + _allowance(period)
        statuses.append(JobStatus(name, period, last_success.get(name), since, overdue))
    return statuses


@dataclass
class WatchdogResult:
    overdue: list[str] = field(default_factory=list)
    on_time: list[str] = field(default_factory=list)


def jobs_watchdog(*, now: datetime | None = None) -> WatchdogResult:
    """Send `job_overdue` for each overdue job and `job_on_time` for the others. Idempotent: the receivers
    open one alert per job and re-raising updates it. Runs under its own lock, so several watchdogs agree."""
    result = WatchdogResult()
    with advisory_lock("jobs.watchdog") as acquired:
        if not acquired:
            return result
        for status in job_statuses(now=now):
            if status.overdue:
                result.overdue.append(status.job)
                job_overdue.send(sender=BeatJob, job=status.job, status=status)
            else:
                result.on_time.append(status.job)
                job_on_time.send(sender=BeatJob, job=status.job, status=status)
    return result


@metrics.register_collector("jobs")
def job_metrics() -> Iterator[Metric]:
    now = timezone.now()
    since_success = metrics.gauge_family(
        "its_job_seconds_since_success", "Seconds since each beat job last succeeded (absent: never).", ["job"]
    )
    overdue = metrics.gauge_family(
        "its_job_overdue", "1 when a job has not succeeded within JOB_OVERDUE_MULTIPLE x its schedule.", ["job"]
    )
    for status in job_statuses(now=now):
        seconds = status.seconds_since_success(now)
        if seconds is not None:
            since_success.add_metric([status.job], seconds)
        overdue.add_metric([status.job], 1.0 if status.overdue else 0.0)
    yield since_success
    yield overdue
