"""Run a beat job once: take its advisory lock, record a JobRun, raise `job_failed` if it raises."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from archival.choices import JobState
from archival.models import JobRun
from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.locks import advisory_lock

__all__ = ["JobOutcome", "job_execute"]

logger = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    state: str = JobState.SUCCEEDED
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def job_execute(*, job: str, work: Callable[[], JobOutcome]) -> JobRun:
    """Run `work` unless another run of `job` holds its lock (then a SKIPPED JobRun is recorded). An exception
    marks the JobRun FAILED, raises a `job_failed` alert naming the job, and propagates (Celery logs it); a
    run that completes resolves that alert."""
    with advisory_lock(f"job:{job}") as acquired:
        now = timezone.now()
        if not acquired:
            logger.info("%s skipped: another run holds the lock", job)
            return JobRun.objects.create(
                job=job,
                state=JobState.SKIPPED,
                started_at=now,
                finished_at=now,
                duration_ms=0,
                summary={"reason": "another run holds the lock"},
            )
        run = JobRun.objects.create(job=job, state=JobState.RUNNING, started_at=now)
        started = time.perf_counter()
        try:
            outcome = work()
        except Exception as exc:
            logger.exception("%s failed", job)
            error = f"{type(exc).__name__}: {exc}"[:5000]
            _finish(run, state=JobState.FAILED, started=started, error=error)
            alert_raise(
                kind=AlertKind.JOB_FAILED,
                subject=job,
                severity=AlertSeverity.CRITICAL,
                message=f"Job {job} failed: {error}"[:2000],
                details={"job_run": run.pk, "error": type(exc).__name__},
            )
            raise
        _finish(run, state=outcome.state, started=started, summary=outcome.summary, error=outcome.error)
        alert_resolve(kind=AlertKind.JOB_FAILED, subject=job)
        logger.info("%s: %s %s", job, outcome.state, outcome.summary)
        return run


def _finish(run: JobRun, *, state: str, started: float, summary: dict[str, Any] | None = None, error: str = "") -> None:
    run.state = state
    run.summary = summary or {}
    run.error = error
    run.finished_at = timezone.now()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    run.save()
