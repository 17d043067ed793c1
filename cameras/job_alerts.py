"""Alerts for the beat jobs: the kernel's job runner and watchdog (its_camera.jobs) send signals, and the
camera registry, which owns alerts, turns them into `job_failed` and `job_overdue` alerts (one per job,
re-raising updates it) that resolve on the next success. Connected in CamerasConfig.ready."""

from typing import Any

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera import jobs


def _on_job_failed(*, job: str, run: Any, error: str, severity: str, **_: Any) -> None:
    alert_raise(
        kind=AlertKind.JOB_FAILED,
        subject=job,
        severity=severity,
        message=f"Job {job} failed: {error}"[:2000],
        details={"job_run": run.pk, "error": error.split(":", 1)[0][:100]},
    )


def _on_job_succeeded(*, job: str, **_: Any) -> None:
    alert_resolve(kind=AlertKind.JOB_FAILED, subject=job)
    alert_resolve(kind=AlertKind.JOB_OVERDUE, subject=job)


def _on_job_overdue(*, job: str, status: jobs.JobStatus, **_: Any) -> None:
    last = status.last_success_at.isoformat() if status.last_success_at else "never"
    alert_raise(
        kind=AlertKind.JOB_OVERDUE,
        subject=job,
        severity=AlertSeverity.CRITICAL,
        message=(
            f"Job {job} has not succeeded since {last} (schedule every {status.schedule}): is beat or the worker down?"
        )[:2000],
        details={
            "last_success_at": status.last_success_at.isoformat() if status.last_success_at else None,
            "schedule_seconds": status.schedule.total_seconds() if status.schedule else None,
        },
    )


def _on_job_on_time(*, job: str, **_: Any) -> None:
    alert_resolve(kind=AlertKind.JOB_OVERDUE, subject=job)


def connect() -> None:
    jobs.job_failed.connect(_on_job_failed, dispatch_uid="cameras.job_failed")
    jobs.job_succeeded.connect(_on_job_succeeded, dispatch_uid="cameras.job_succeeded")
    jobs.job_overdue.connect(_on_job_overdue, dispatch_uid="cameras.job_overdue")
    jobs.job_on_time.connect(_on_job_on_time, dispatch_uid="cameras.job_on_time")
