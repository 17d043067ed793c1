"""Beat jobs of the camera registry. Thin: take the lock, call the service, record the outcome.

Schedule: migration 0004 creates the django-celery-beat entry (every minute), editable in the admin.
"""

import logging
from datetime import datetime
from typing import Any

from celery import shared_task

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from cameras.services.offline_alerts import OfflineAlertsResult, camera_offline_alerts_refresh
from its_camera.db.locks import advisory_lock

logger = logging.getLogger(__name__)

RAISE_STALE_CAMERA_ALERTS = "cameras.tasks.raise_stale_camera_alerts"
MAX_BATCHES_PER_RUN = 10


@shared_task(name=RAISE_STALE_CAMERA_ALERTS)
def raise_stale_camera_alerts(now: str | None = None) -> dict[str, Any]:
    """Open, debounce and resolve `camera_offline` alerts (see cameras.services.offline_alerts).

    `now` (ISO 8601) pins the clock for tests and replays. At most MAX_BATCHES_PER_RUN batches per run;
    whatever is left waits for the next run. A second run while one is going returns at once."""
    at = datetime.fromisoformat(now) if now else None
    with advisory_lock(RAISE_STALE_CAMERA_ALERTS) as acquired:
        if not acquired:
            logger.info("%s skipped: another run holds the lock", RAISE_STALE_CAMERA_ALERTS)
            return {"skipped": True}
        total = OfflineAlertsResult()
        try:
            for _ in range(MAX_BATCHES_PER_RUN):
                batch = camera_offline_alerts_refresh(now=at)
                total.raised += batch.raised
                total.flapped += batch.flapped
                total.recovering += batch.recovering
                total.resolved += batch.resolved
                total.more = batch.more
                if not batch.more or not (batch.raised or batch.flapped or batch.recovering or batch.resolved):
                    break
        except Exception as exc:
            # A job never fails silently: operators see it in the alert list.
            logger.exception("%s failed", RAISE_STALE_CAMERA_ALERTS)
            alert_raise(
                kind=AlertKind.JOB_FAILED,
                subject=RAISE_STALE_CAMERA_ALERTS,
                severity=AlertSeverity.CRITICAL,
                message=f"Stale-camera alert job failed: {type(exc).__name__}: {exc}"[:2000],
                details={"error": type(exc).__name__},
            )
            raise
        alert_resolve(kind=AlertKind.JOB_FAILED, subject=RAISE_STALE_CAMERA_ALERTS)
    outcome = {"skipped": False, **total.as_dict()}
    logger.info("%s: %s", RAISE_STALE_CAMERA_ALERTS, outcome)
    return outcome
