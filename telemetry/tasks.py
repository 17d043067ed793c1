"""Beat jobs of the telemetry app, run through the kernel's job runner (its_camera.jobs: lock, JobRun, metric,
job_failed alert).

Schedule: migrations 0005 and 0006 create the django-celery-beat entries for `refresh_rollups` (every
minute) and `purge_idempotency_keys` (hourly), editable in the admin.
"""

from datetime import datetime, timedelta

from django.conf import settings

from its_camera.jobs import JobResult, beat_job
from telemetry.models import RollupWatermark
from telemetry.observability import rollup_run_record
from telemetry.services.ingest import idempotency_keys_purge
from telemetry.services.rollups import WATERMARK_NAME, rollup_lag_alert_refresh, rollup_minutes_prune, rollups_refresh

REFRESH_ROLLUPS = "telemetry.tasks.refresh_rollups"
PURGE_IDEMPOTENCY_KEYS = "telemetry.tasks.purge_idempotency_keys"


@beat_job(name=REFRESH_ROLLUPS, every=timedelta(minutes=1))
def refresh_rollups(*, now: datetime) -> JobResult:
    """Move the rollups forward from their watermark (telemetry.services.rollups.rollups_refresh), prune
    old minute rows, and raise or resolve the `rollup_lag` alert. A run is bounded (steps and seconds); when
    it stops before catching up, the runner queues the next run at once instead of waiting for beat."""
    try:
        result = rollups_refresh(now=now)
        pruned = rollup_minutes_prune(now=now)
    except Exception as exc:
        # Also shown on the watermark row, beside the lag it causes.
        message = f"Rollup refresh failed: {type(exc).__name__}: {exc}"[:2000]
        RollupWatermark.objects.filter(name=WATERMARK_NAME).update(last_error=message, last_run_at=now)
        raise
    lag = rollup_lag_alert_refresh(now=now)
    rollup_run_record(result=result)
    summary = {
        **result.as_dict(),
        "minute_rows_pruned": pruned,
        "lag_seconds": round(lag.total_seconds(), 1) if lag is not None else None,
    }
    return JobResult(rows=result.rows + pruned, summary=summary, again=not result.caught_up)


@beat_job(name=PURGE_IDEMPOTENCY_KEYS, every=timedelta(hours=1), severity="warning")
def purge_idempotency_keys(*, now: datetime) -> JobResult:
    """Forget idempotency keys older than TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS, so the table stays small."""
    deleted = idempotency_keys_purge(older_than=now - timedelta(hours=settings.TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS))
    return JobResult(rows=deleted, summary={"deleted": deleted})
