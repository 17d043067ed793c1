"""Beat jobs of the archival app, run through the kernel's job runner (its_camera.jobs: lock, JobRun, metric,
job_failed alert); thin: each calls its service and says what it did.

Schedules: migration 0003 creates the django-celery-beat entries, editable in the admin (Periodic tasks):
ensure_partitions hourly, sweep_default_partitions every 15 minutes, apply_retention daily at 02:30 UTC;
migration 0006 adds seal_partitions every 15 minutes, tier_partitions hourly and verify_cold_files daily
(docs/storage.md).
"""

from datetime import datetime, timedelta
from typing import Any

from celery import shared_task

from archival.choices import ArchiveState
from archival.models import ArchiveRun
from archival.services.archives import archive_restore
from archival.services.partitions import default_partitions_sweep, partitions_ensure
from archival.services.retention import retention_apply
from archival.services.tiering import cold_files_verify, partitions_tier
from its_camera.jobs import JobResult, beat_job
from telemetry.services.tiering import partitions_seal

ENSURE_PARTITIONS = "archival.tasks.ensure_partitions"
APPLY_RETENTION = "archival.tasks.apply_retention"
SWEEP_DEFAULT_PARTITIONS = "archival.tasks.sweep_default_partitions"
RESTORE_ARCHIVE = "archival.tasks.restore_archive"
SEAL_PARTITIONS = "archival.tasks.seal_partitions"
TIER_PARTITIONS = "archival.tasks.tier_partitions"
VERIFY_COLD_FILES = "archival.tasks.verify_cold_files"

BUSY = "partition or retention work running elsewhere"


@beat_job(name=ENSURE_PARTITIONS, every=timedelta(hours=1))
def ensure_partitions(*, now: datetime) -> JobResult:
    """Partitions 14 days (daily) / 6 months (monthly) ahead."""
    counts = partitions_ensure(now=now)
    if counts is None:
        return JobResult(skipped=BUSY)
    return JobResult(rows=counts["moved_rows"], summary=counts)


@beat_job(name=APPLY_RETENTION, every=timedelta(days=1))
def apply_retention(*, now: datetime, policy: str | None = None) -> JobResult:
    """Every enabled retention policy (or the one named), bounded per run; failed archive runs raise
    `archival_failed` and fail the job."""
    result = retention_apply(now=now, policy_name=policy)
    if result is None:
        return JobResult(skipped=BUSY)
    error = "; ".join(f"archive run {run.pk}: {run.error}" for run in result.failed)[:5000]
    rows = sum(run.rows or 0 for run in result.runs)  # exported and dropped, or deleted
    return JobResult(rows=rows, summary=result.summary(), error=error)


@beat_job(name=SWEEP_DEFAULT_PARTITIONS, every=timedelta(minutes=15))
def sweep_default_partitions(*, now: datetime) -> JobResult:
    """Move rows out of the DEFAULT partitions (alerting on what is found)."""
    results = default_partitions_sweep(now=now)
    if results is None:
        return JobResult(skipped=BUSY)
    summary = {r.table: {"found": r.found_rows, "moved": r.moved_rows, "left": r.remaining_rows} for r in results}
    return JobResult(rows=sum(r.moved_rows for r in results), summary=summary)


@beat_job(name=SEAL_PARTITIONS, every=timedelta(minutes=15))
def seal_partitions(*, now: datetime) -> JobResult:
    """Seal partitions past their range and the late-row grace (telemetry.services.tiering.partitions_seal)."""
    results = partitions_seal(now=now)
    return JobResult(rows=len(results), summary={"sealed": [r.partition for r in results]})


@beat_job(name=TIER_PARTITIONS, every=timedelta(hours=1))
def tier_partitions(*, now: datetime) -> JobResult:
    """Write due sealed partitions cold (archival.services.tiering.partitions_tier); a failed partition raises
    `archival_failed` and fails the job."""
    result = partitions_tier(now=now)
    if result is None:
        return JobResult(skipped=BUSY)
    error = "; ".join(f"archive run {run.pk}: {run.error}" for run in result.failed)[:5000]
    return JobResult(rows=result.summary()["rows"], summary=result.summary(), error=error, again=result.deferred > 0)


@beat_job(name=VERIFY_COLD_FILES, every=timedelta(days=1))
def verify_cold_files(*, now: datetime) -> JobResult:
    """Re-read every cold file from the storage; a missing or corrupt one raises an alert naming its rows."""
    failed = cold_files_verify(now=now)
    error = "; ".join(f"{tier.partition}: {tier.verify_error}" for tier in failed)[:5000]
    return JobResult(rows=len(failed), summary={"failed": [tier.partition for tier in failed]}, error=error)


@shared_task(name=RESTORE_ARCHIVE)
def restore_archive(restore_run_id: int) -> dict[str, Any]:
    """Carry out a restore queued from the admin (a QUEUED restore ArchiveRun pointing at its export run)."""
    run = ArchiveRun.objects.select_related("restored_from").get(pk=restore_run_id)
    if run.state != ArchiveState.QUEUED:
        return {"archive_run": run.pk, "state": run.state, "skipped": True}
    done = archive_restore(source=run.restored_from, run=run, requested_by=run.requested_by)
    return {"archive_run": done.pk, "state": done.state, "rows": done.rows}
