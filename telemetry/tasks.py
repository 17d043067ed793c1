"""Beat jobs of the telemetry app. Thin: take the lock, call the service, record the outcome.

Schedule: migrations 0005 and 0006 create the django-celery-beat entries for `refresh_rollups` (every
minute) and `purge_idempotency_keys` (hourly), editable in the admin.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.locks import advisory_lock
from telemetry.models import RollupWatermark
from telemetry.observability import job_outcome_record, rollup_run_record
from telemetry.services.ingest import idempotency_keys_purge
from telemetry.services.rollups import WATERMARK_NAME, rollup_lag_alert_refresh, rollup_minutes_prune, rollups_refresh

logger = logging.getLogger(__name__)

REFRESH_ROLLUPS = "telemetry.tasks.refresh_rollups"


@shared_task(name=REFRESH_ROLLUPS)
def refresh_rollups(now: str | None = None) -> dict[str, Any]:
    """Move the rollups forward from their watermark (telemetry.services.rollups.rollups_refresh), prune
    old minute rows, and raise or resolve the `rollup_lag` alert.

    `now` (ISO 8601) pins the clock for tests and replays. A run is bounded (steps and seconds); when it
    stops before catching up it queues the next run at once instead of waiting for beat. A second run while
    one is going returns at once."""
    at = datetime.fromisoformat(now) if now else None
    with advisory_lock(REFRESH_ROLLUPS) as acquired:
        if not acquired:
            logger.info("%s skipped: another run holds the lock", REFRESH_ROLLUPS)
            job_outcome_record(job=REFRESH_ROLLUPS, outcome="skipped")
            return {"skipped": True}
        try:
            result = rollups_refresh(now=at)
            pruned = rollup_minutes_prune(now=at)
        except Exception as exc:
            # A job never fails silently: operators see it in the alert list and on the watermark row.
            logger.exception("%s failed", REFRESH_ROLLUPS)
            message = f"Rollup refresh failed: {type(exc).__name__}: {exc}"[:2000]
            RollupWatermark.objects.filter(name=WATERMARK_NAME).update(last_error=message, last_run_at=timezone.now())
            alert_raise(
                kind=AlertKind.JOB_FAILED,
                subject=REFRESH_ROLLUPS,
                severity=AlertSeverity.CRITICAL,
                message=message,
                details={"error": type(exc).__name__},
            )
            job_outcome_record(job=REFRESH_ROLLUPS, outcome="failed")
            raise
        alert_resolve(kind=AlertKind.JOB_FAILED, subject=REFRESH_ROLLUPS)
        lag = rollup_lag_alert_refresh(now=at)
    rollup_run_record(result=result)
    job_outcome_record(job=REFRESH_ROLLUPS, outcome="succeeded")
    outcome = {
        "skipped": False,
        **result.as_dict(),
        "minute_rows_pruned": pruned,
        "lag_seconds": round(lag.total_seconds(), 1) if lag is not None else None,
    }
    logger.info("%s: %s", REFRESH_ROLLUPS, outcome)
    if not result.caught_up and at is None:
        refresh_rollups.apply_async(countdown=1)
    return outcome


PURGE_IDEMPOTENCY_KEYS = "telemetry.tasks.purge_idempotency_keys"


@shared_task(name=PURGE_IDEMPOTENCY_KEYS)
def purge_idempotency_keys(now: str | None = None) -> dict[str, Any]:
    """Forget idempotency keys older than TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS, so the table stays small.
    Locked like every job; a failure raises a `job_failed` alert."""
    at = datetime.fromisoformat(now) if now else timezone.now()
    with advisory_lock(PURGE_IDEMPOTENCY_KEYS) as acquired:
        if not acquired:
            job_outcome_record(job=PURGE_IDEMPOTENCY_KEYS, outcome="skipped")
            return {"skipped": True}
        try:
            deleted = idempotency_keys_purge(
                older_than=at - timedelta(hours=settings.TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS)
            )
        except Exception as exc:
            logger.exception("%s failed", PURGE_IDEMPOTENCY_KEYS)
            alert_raise(
                kind=AlertKind.JOB_FAILED,
                subject=PURGE_IDEMPOTENCY_KEYS,
                severity=AlertSeverity.WARNING,
                message=f"Idempotency-key purge failed: {type(exc).__name__}: {exc}"[:2000],
                details={"error": type(exc).__name__},
            )
            job_outcome_record(job=PURGE_IDEMPOTENCY_KEYS, outcome="failed")
            raise
        alert_resolve(kind=AlertKind.JOB_FAILED, subject=PURGE_IDEMPOTENCY_KEYS)
    job_outcome_record(job=PURGE_IDEMPOTENCY_KEYS, outcome="succeeded")
    return {"skipped": False, "deleted": deleted}
