"""Beat jobs of the archival app. Thin: parse arguments, call the service inside job_execute (lock, JobRun,
alert on failure).

Schedules: migration 0003 creates the django-celery-beat entries, editable in the admin (Periodic tasks):
ensure_partitions hourly, sweep_default_partitions every 15 minutes, apply_retention daily at 02:30 UTC.
"""

from datetime import datetime
from typing import Any

from celery import shared_task

from archival.choices import ArchiveState, JobState
from archival.models import ArchiveRun
from archival.services.archives import archive_restore
from archival.services.jobs import JobOutcome, job_execute
from archival.services.partitions import default_partitions_sweep, partitions_ensure
from archival.services.retention import retention_apply

ENSURE_PARTITIONS = "archival.tasks.ensure_partitions"
APPLY_RETENTION = "archival.tasks.apply_retention"
SWEEP_DEFAULT_PARTITIONS = "archival.tasks.sweep_default_partitions"
RESTORE_ARCHIVE = "archival.tasks.restore_archive"

SKIPPED = JobOutcome(state=JobState.SKIPPED, summary={"reason": "partition or retention work running elsewhere"})


def _moment(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


def _result(run: Any) -> dict[str, Any]:
    return {"job_run": run.pk, "state": run.state, **run.summary}


@shared_task(name=ENSURE_PARTITIONS)
def ensure_partitions(now: str | None = None) -> dict[str, Any]:
    """Partitions 14 days (daily) / 6 months (monthly) ahead. `now` (ISO 8601) pins the clock."""

    def work() -> JobOutcome:
        counts = partitions_ensure(now=_moment(now))
        return SKIPPED if counts is None else JobOutcome(summary=counts)

    return _result(job_execute(job=ENSURE_PARTITIONS, work=work))


@shared_task(name=APPLY_RETENTION)
def apply_retention(now: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """Every enabled retention policy, bounded per run; failed archive runs raise `archival_failed`."""

    def work() -> JobOutcome:
        result = retention_apply(now=_moment(now), policy_name=policy)
        if result is None:
            return SKIPPED
        state = JobState.FAILED if result.failed else JobState.SUCCEEDED
        error = "; ".join(f"run {run.pk}: {run.error}" for run in result.failed)[:5000]
        return JobOutcome(state=state, summary=result.summary(), error=error)

    return _result(job_execute(job=APPLY_RETENTION, work=work))


@shared_task(name=SWEEP_DEFAULT_PARTITIONS)
def sweep_default_partitions(now: str | None = None) -> dict[str, Any]:
    """Move rows out of the DEFAULT partitions (alerting on what is found)."""

    def work() -> JobOutcome:
        results = default_partitions_sweep(now=_moment(now))
        if results is None:
            return SKIPPED
        summary = {r.table: {"found": r.found_rows, "moved": r.moved_rows, "left": r.remaining_rows} for r in results}
        return JobOutcome(summary=summary)

    return _result(job_execute(job=SWEEP_DEFAULT_PARTITIONS, work=work))


@shared_task(name=RESTORE_ARCHIVE)
def restore_archive(restore_run_id: int) -> dict[str, Any]:
    """Carry out a restore queued from the admin (a QUEUED restore ArchiveRun pointing at its export run)."""
    run = ArchiveRun.objects.select_related("restored_from").get(pk=restore_run_id)
    if run.state != ArchiveState.QUEUED:
        return {"archive_run": run.pk, "state": run.state, "skipped": True}
    done = archive_restore(source=run.restored_from, run=run, requested_by=run.requested_by)
    return {"archive_run": done.pk, "state": done.state, "rows": done.rows}
