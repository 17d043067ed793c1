"""Schedule `its_camera.tasks.purge_job_runs` daily in django-celery-beat, so `job_runs` keeps only the last
JOB_RUN_RETENTION_DAYS of history. Operators can change or disable it in the admin (Periodic tasks);
re-running this migration never overwrites their edits."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

TASK = "its_camera.tasks.purge_job_runs"
NAME = "platform: purge job runs"


def create_schedule(apps, schema_editor):
    schedule_interval_task(
        apps,
        name=NAME,
        task=TASK,
        every=1,
        period="days",
        description="Forget job runs older than JOB_RUN_RETENTION_DAYS (docs/jobs.md).",
    )


def delete_schedule(apps, schema_editor):
    unschedule_tasks(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("its_camera", "0002_jobrun"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
