"""Schedule `telemetry.tasks.refresh_rollups` every minute in django-celery-beat, so a fresh install keeps
its rollups current. Operators can change or disable it in the admin (Periodic tasks); re-running this
migration never overwrites their edits."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "telemetry.tasks.refresh_rollups"
NAME = "telemetry: refresh rollups"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=1,
        period="minutes",
        description="Aggregate new frames and detections into the minute/hour/day rollups (docs/analytics.md).",
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0004_raw_timestamp_brin_indexes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
