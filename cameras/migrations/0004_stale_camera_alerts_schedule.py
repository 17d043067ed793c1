"""Schedule `cameras.tasks.raise_stale_camera_alerts` every minute in django-celery-beat, so a fresh
install runs it. Operators can change or disable it in the admin (Periodic tasks); re-running this
migration never overwrites their edits."""

from django.db import migrations

TASK = "cameras.tasks.raise_stale_camera_alerts"
NAME = "cameras: raise stale camera alerts"


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
        description="Open, debounce and resolve camera_offline alerts (docs/cameras.md).",
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0003_name_search_and_constraint_messages"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
