"""Schedule `cameras.publish_live_status` every 10 seconds in django-celery-beat: it publishes the live
connection-status changes that happen by the passing of time (streaming -> recent -> stale), see
cameras/status_events.py and docs/live.md. Operators can change or disable it in the admin (Periodic
tasks); re-running this migration never overwrites their edits."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "cameras.publish_live_status"
NAME = "cameras: publish live status changes"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=10,
        period="seconds",
        description="Publish camera connection-status changes to live subscribers (docs/live.md).",
        # A run that waited longer than its interval is stale: the next one does the same work.
        expire_seconds=10,
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0004_stale_camera_alerts_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
