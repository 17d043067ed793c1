"""Schedule `telemetry.tasks.refresh_rollups` every minute in django-celery-beat, so a fresh install keeps
its rollups current. Operators can change or disable it in the admin (Periodic tasks); re-running this
migration never overwrites their edits."""

from django.db import migrations

TASK = "telemetry.tasks.refresh_rollups"
NAME = "telemetry: refresh rollups"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    # IntervalSchedule has no unique constraint: reuse any "every 1 minute" row another app created.
    every_minute = IntervalSchedule.objects.filter(every=1, period="minutes").order_by("pk").first()
    if every_minute is None:
        every_minute = IntervalSchedule.objects.create(every=1, period="minutes")
    PeriodicTask.objects.create(
        name=NAME,
        task=TASK,
        interval=every_minute,
        enabled=True,
        description="Aggregate new frames and detections into the minute/hour/day rollups (docs/analytics.md).",
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0004_raw_timestamp_brin_indexes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
