"""Schedule the archival jobs in django-celery-beat so a fresh install runs them; operators change or disable
them in the admin (Periodic tasks). Re-running never overwrites their edits; the reverse removes them."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

JOBS = [
    # (name, task, schedule, description)
    (
        "archival: ensure partitions",
        "archival.tasks.ensure_partitions",
        ("interval", 1, "hours"),
        "Partitions 14 days (daily) / 6 months (monthly) ahead, boundaries at 00:00 UTC (docs/archival.md).",
    ),
    (
        "archival: sweep default partitions",
        "archival.tasks.sweep_default_partitions",
        ("interval", 15, "minutes"),
        "Alert on rows in DEFAULT partitions and move them into proper partitions (docs/archival.md).",
    ),
    (
        "archival: apply retention",
        "archival.tasks.apply_retention",
        ("crontab", "30", "2"),
        "Retention policies: export-verify-drop partitions, batch-delete plain tables (docs/archival.md).",
    ),
]


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, schedule, description in JOBS:
        if schedule[0] == "interval":
            every, period = schedule[1], schedule[2]
            schedule_interval_task(apps, name=name, task=task, every=every, period=period, description=description)
            continue
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        minute, hour = schedule[1], schedule[2]
        crontab_fields = {
            "minute": minute,
            "hour": hour,
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "UTC",
        }
        # CrontabSchedule has no unique constraint either: reuse a matching row.
        crontab = CrontabSchedule.objects.filter(**crontab_fields).order_by("pk").first()
        crontab = crontab or CrontabSchedule.objects.create(**crontab_fields)
        PeriodicTask.objects.create(name=name, task=task, enabled=True, description=description, crontab=crontab)


def delete_schedules(apps, schema_editor):
    unschedule_tasks(apps, *(name for name, *_ in JOBS))


class Migration(migrations.Migration):
    dependencies = [
        ("archival", "0002_seed_retention_policies"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
