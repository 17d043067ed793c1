"""The admin home's beat jobs panel (its_camera.admin_pages registry; imported by its_camera/admin.py), read from
the job runner (its_camera.jobs): each job's last success, whether it is overdue, and its latest run."""

from datetime import datetime
from typing import Any

from django.urls import reverse

from its_camera import admin_pages
from its_camera.jobs import job_statuses
from its_camera.models import JobRun


def jobs_panel(*, now: datetime) -> dict[str, Any]:
    statuses = job_statuses(now=now)  # two queries: last successes, beat entries
    latest = {
        run.job: run
        for run in JobRun.objects.filter(job__in=[status.job for status in statuses])
        .order_by("job", "-started_at", "-id")
        .distinct("job")  # the newest run of each job by idx_job_runs_job_started
        .only("job", "outcome", "started_at", "error")
    }
    changelist = reverse("admin:its_camera_jobrun_changelist")
    jobs = [
        {
            "name": status.job,
            "schedule": status.schedule,
            "last_success_at": status.last_success_at,
            "overdue": status.overdue,
            "latest": latest.get(status.job),
            "url": f"{changelist}?job__exact={status.job}",
        }
        for status in statuses
    ]
    return {
        "jobs": jobs,
        "runs_url": changelist,
        "schedules_url": reverse("admin:django_celery_beat_periodictask_changelist"),
    }


admin_pages.register_panel(
    key="jobs",
    title="Beat jobs",
    order=50,
    template="admin/operations/panels/jobs.html",
    context=jobs_panel,
    wide=True,
    permission="its_camera.view_jobrun",
)
