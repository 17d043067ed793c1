"""Celery tasks of notifications. Thin: they call the services.

`deliver_notification` is queued after the transaction that wrote the delivery commits. `process_due` is a beat
job (every minute, migration 0002) run through the kernel's job runner (its_camera.jobs: lock, JobRun, metric,
job_failed alert): reminders of alerts still open, retries whose task was lost, sends the broker never got.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task

from its_camera.jobs import JobResult, beat_job
from notifications.services.deliveries import delivery_attempt, notifications_due_process

logger = logging.getLogger(__name__)

DELIVER = "notifications.tasks.deliver_notification"
PROCESS_DUE = "notifications.tasks.process_due"


@shared_task(name=DELIVER, ignore_result=True)
def deliver_notification(delivery_id: int) -> dict[str, Any]:
    """Send one delivery; after a failure, queue the next attempt after its backoff."""
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome is None:
        return {"delivery_id": delivery_id, "claimed": False}
    if outcome.retry_in is not None:
        try:
            deliver_notification.apply_async(args=(delivery_id,), countdown=outcome.retry_in, retry=False)
        except Exception:  # the beat job sends it when it is due
            logger.warning("could not queue the retry of delivery %s", delivery_id, exc_info=True)
    return {"delivery_id": delivery_id, "claimed": True, "state": outcome.state, "error": outcome.error}


@beat_job(name=PROCESS_DUE, every=timedelta(minutes=1), severity="warning")
def process_due(*, now: datetime) -> JobResult:
    """Write due reminders and queue due deliveries (bounded by NOTIFICATIONS_BATCH_SIZE)."""
    touched = notifications_due_process(now=now)
    return JobResult(rows=touched, summary={"rows": touched})
