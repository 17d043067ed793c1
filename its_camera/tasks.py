"""Platform tasks."""

import logging
from datetime import datetime, timedelta

import redis
from celery import shared_task
from django.conf import settings

from its_camera.jobs import JobResult, beat_job
from its_camera.models import JobRun

PING = "its_camera.tasks.ping"
logger = logging.getLogger(__name__)


@shared_task(name=PING)
def ping(token: str) -> str:
    """Proves the path beat/API -> broker -> worker works end to end: the worker records `token` in Redis
    for a minute (`its:ping:<token>`), where the sender can look for it."""
    logger.info("ping %s", token)
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(f"its:ping:{token}", "pong", ex=60)
    finally:
        client.close()
    return token


PURGE_JOB_RUNS = "its_camera.tasks.purge_job_runs"
PURGE_BATCH_SIZE = 10_000
PURGE_MAX_BATCHES = 20


@beat_job(name=PURGE_JOB_RUNS, every=timedelta(days=1), severity="warning")
def purge_job_runs(*, now: datetime) -> JobResult:
    """Forget job runs older than JOB_RUN_RETENTION_DAYS (a 10-second job writes 8,640 a day), in batches of
    PURGE_BATCH_SIZE, at most PURGE_MAX_BATCHES a run: whatever is left goes in the next run, queued at once."""
    cutoff = now - timedelta(days=settings.JOB_RUN_RETENTION_DAYS)
    deleted = 0
    for _ in range(PURGE_MAX_BATCHES):
        batch = JobRun.objects.filter(started_at__lt=cutoff).order_by("started_at").values("pk")[:PURGE_BATCH_SIZE]
        count, _by_model = JobRun.objects.filter(pk__in=batch).delete()
        deleted += count
        if count < PURGE_BATCH_SIZE:
            return JobResult(rows=deleted, summary={"deleted": deleted})
    return JobResult(rows=deleted, summary={"deleted": deleted}, again=True)
