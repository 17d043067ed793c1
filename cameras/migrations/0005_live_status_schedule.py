"""Schedule `cameras.publish_live_status` every 10 seconds in django-celery-beat: it publishes the live
connection-status changes that happen by the passing of time (streaming -> recent -> stale), see
cameras/status_events.py and docs/live.md. Operators can change or disable it in the admin (Periodic
tasks); re-running this migration never overwrites their edits."""

from django.db import migrations

TASK = "cameras.publish_live_status"
NAME = "cameras: publish live status changes"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    # IntervalSchedule has no unique constraint: reuse any "every 10 seconds" row another app created.
    every_10_seconds = IntervalSchedule.objects.filter(every=10, period="seconds").order_by("pk").first()
    if every_10_seconds is None:
        every_10_seconds = IntervalSchedule.objects.create(every=10, period="seconds")
    PeriodicTask.objects.create(
        name=NAME,
        task=TASK,
        interval=every_10_seconds,
        enabled=True,
        # A run that waited longer than its interval is stale: the next one does the same work.
        expire_seconds=10,
        description="Publish camera connection-status changes to live subscribers (docs/live.md).",
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0004_stale_camera_alerts_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
