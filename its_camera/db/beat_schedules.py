"""Beat schedules created by data migrations, so a fresh install runs its jobs.

Idempotent and respectful of operators: a task that already exists (by name) is left as it is, so
re-running a migration never overwrites an edit made in the admin (Periodic tasks). Called with the
migration's historical `apps`:

    def create_schedule(apps, schema_editor):
        schedule_interval_task(apps, name=NAME, task=TASK, every=1, period="minutes", description="...")
"""

from typing import Any


def schedule_interval_task(
    apps: Any,
    *,
    name: str,
    task: str,
    every: int,
    period: str,
    description: str,
    expire_seconds: int | None = None,
) -> None:
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if task_model.objects.filter(name=name).exists():
        return
    # IntervalSchedule has no unique constraint: reuse a matching row another app created.
    interval = interval_model.objects.filter(every=every, period=period).order_by("pk").first()
    if interval is None:
        interval = interval_model.objects.create(every=every, period=period)
    task_model.objects.create(
        name=name, task=task, interval=interval, enabled=True, description=description, expire_seconds=expire_seconds
    )


def unschedule_tasks(apps: Any, *names: str) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()
