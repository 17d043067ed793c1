"""The admin home's beat jobs panel (its_camera.admin_pages registry; imported by its_camera/admin.py)."""

from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from its_camera import admin_pages

MAX_JOBS_SHOWN = 50
OVERDUE_AFTER_INTERVALS = 3  # a job not run for this many of its intervals is shown as overdue


def _every(task: PeriodicTask) -> timedelta | None:
    if task.interval is None:
        return None
    return timedelta(**{task.interval.period: task.interval.every})


def jobs_panel(*, now: datetime) -> dict[str, Any]:
    tasks = list(
        PeriodicTask.objects.select_related("interval", "crontab")
        .exclude(task="celery.backend_cleanup")
        .order_by("name")[:MAX_JOBS_SHOWN]
    )
    jobs = []
    for task in tasks:
        every = _every(task)
        overdue = bool(
            task.enabled
            and every is not None
            and (task.last_run_at is None or now - task.last_run_at > every * OVERDUE_AFTER_INTERVALS)
        )
        jobs.append(
            {
                "name": task.name,
                "task": task.task,
                "enabled": task.enabled,
                "schedule": str(task.interval or task.crontab or "—"),
                "last_run_at": task.last_run_at,
                "overdue": overdue,
                "url": reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]),
            }
        )
    return {"jobs": jobs, "schedules_url": reverse("admin:django_celery_beat_periodictask_changelist")}


admin_pages.register_panel(
    key="jobs", title="Beat jobs", order=50, template="admin/operations/panels/jobs.html", context=jobs_panel, wide=True
)
