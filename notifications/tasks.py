"""Celery tasks of notifications. Thin: they call the services.

`deliver_notification` is queued after the transaction that wrote the delivery commits; `process_due` runs
every minute from beat (migration 0002): reminders, retries whose task was lost, sends the broker never got.
"""

import logging
from datetime import datetime
from typing import Any

from celery import shared_task

from cameras.choices import AlertKind, AlertSeverity
from cameras.services.alerts import alert_raise, alert_resolve
from its_camera.db.locks import advisory_lock
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
        except Exception:  # the beat sweep sends it when it is due
            logger.warning("could not queue the retry of delivery %s", delivery_id, exc_info=True)
    return {"delivery_id": delivery_id, "claimed": True, "state": outcome.state, "error": outcome.error}


@shared_task(name=PROCESS_DUE)
def process_due(now: str | None = None) -> dict[str, Any]:
    at = datetime.fromisoformat(now) if now else None
    with advisory_lock(PROCESS_DUE) as acquired:
        if not acquired:
            return {"skipped": True}
        try:
            touched = notifications_due_process(now=at)
        except Exception as exc:
            logger.exception("%s failed", PROCESS_DUE)
            alert_raise(
                kind=AlertKind.JOB_FAILED,
                subject=PROCESS_DUE,
                severity=AlertSeverity.WARNING,
                message=f"Notification reminders and retries failed: {type(exc).__name__}: {exc}"[:2000],
                details={"error": type(exc).__name__},
            )
            raise
        alert_resolve(kind=AlertKind.JOB_FAILED, subject=PROCESS_DUE)
    return {"skipped": False, "rows": touched}
