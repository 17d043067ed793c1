"""Beat jobs of the camera registry, run through the kernel's job runner (its_camera.jobs: lock, JobRun,
metric, job_failed alert).

Schedule: migration 0004 creates the django-celery-beat entry (every minute), editable in the admin.
"""

from datetime import datetime, timedelta

from cameras.services.offline_alerts import OfflineAlertsResult, camera_offline_alerts_refresh
from cameras.status_events import publish_live_status
from its_camera.jobs import JobResult, beat_job

__all__ = ["publish_live_status", "raise_stale_camera_alerts"]  # the live status job lives beside its events

RAISE_STALE_CAMERA_ALERTS = "cameras.tasks.raise_stale_camera_alerts"
MAX_BATCHES_PER_RUN = 10


@beat_job(name=RAISE_STALE_CAMERA_ALERTS, every=timedelta(minutes=1))
def raise_stale_camera_alerts(*, now: datetime) -> JobResult:
    """Open, debounce and resolve `camera_offline` alerts (see cameras.services.offline_alerts). At most
    MAX_BATCHES_PER_RUN batches per run; whatever is left waits for the next run."""
    total = OfflineAlertsResult()
    for _ in range(MAX_BATCHES_PER_RUN):
        batch = camera_offline_alerts_refresh(now=now)
        total.raised += batch.raised
        total.flapped += batch.flapped
        total.recovering += batch.recovering
        total.resolved += batch.resolved
        total.more = batch.more
        if not batch.more or not (batch.raised or batch.flapped or batch.recovering or batch.resolved):
            break
    changed = total.raised + total.flapped + total.recovering + total.resolved
    return JobResult(rows=changed, summary=total.as_dict())
