"""Schedule `notifications.tasks.process_due` every minute in django-celery-beat: reminders of alerts still
open, and deliveries whose send task was lost or whose retry is due. Operators can change it in the admin."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "notifications.tasks.process_due"
NAME = "notifications: reminders and due deliveries"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=1,
        period="minutes",
        description="Reminders for alerts still open, and notification deliveries due (docs/operations.md).",
        expire_seconds=60,
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
