"""Schedule `cameras.tasks.raise_stale_camera_alerts` every minute in django-celery-beat, so a fresh
install runs it. Operators can change or disable it in the admin (Periodic tasks); re-running this
migration never overwrites their edits."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "cameras.tasks.raise_stale_camera_alerts"
NAME = "cameras: raise stale camera alerts"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=1,
        period="minutes",
        description="Open, debounce and resolve camera_offline alerts (docs/cameras.md).",
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0003_name_search_and_constraint_messages"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
