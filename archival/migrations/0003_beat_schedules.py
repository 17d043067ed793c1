"""Schedule the archival jobs in django-celery-beat so a fresh install runs them; operators change or disable
them in the admin (Periodic tasks). Re-running never overwrites their edits; the reverse removes them."""

from django.db import migrations

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
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, schedule, description in JOBS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        fields = {}
        if schedule[0] == "interval":
            # IntervalSchedule has no unique constraint: reuse a matching row another app created.
            every, period = schedule[1], schedule[2]
            interval = IntervalSchedule.objects.filter(every=every, period=period).order_by("pk").first()
            fields["interval"] = interval or IntervalSchedule.objects.create(every=every, period=period)
        else:
            minute, hour = schedule[1], schedule[2]
            crontab = (
                CrontabSchedule.objects.filter(
                    minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
                )
                .order_by("pk")
                .first()
            )
            fields["crontab"] = crontab or CrontabSchedule.objects.create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )
        PeriodicTask.objects.create(name=name, task=task, enabled=True, description=description, **fields)


def delete_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in JOBS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("archival", "0002_seed_retention_policies"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
