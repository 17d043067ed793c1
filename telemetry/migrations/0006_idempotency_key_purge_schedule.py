"""Schedule `telemetry.tasks.purge_idempotency_keys` hourly in django-celery-beat, so the idempotency-key
table keeps only the last TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS of keys. Operators can change or disable it
in the admin (Periodic tasks); re-running this migration never overwrites their edits."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "telemetry.tasks.purge_idempotency_keys"
NAME = "telemetry: purge idempotency keys"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=1,
        period="hours",
        description="Forget idempotency keys older than TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS (docs/telemetry.md).",
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0005_rollup_refresh_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
