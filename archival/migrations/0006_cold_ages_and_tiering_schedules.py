"""Cold ages for the seeded telemetry policies (frames and detections cold after 7 days, metrics after 30) and
the tiering jobs in django-celery-beat: seal partitions every 15 minutes, write due partitions cold hourly,
re-verify cold files daily. Operators' edits are never overwritten; the reverse removes only what is still as seeded."""

from django.db import migrations

from its_camera.db.beat_schedules import schedule_interval_task, unschedule_tasks

COLD_AFTER_DAYS = {"frame_metadata": 7, "detections": 7, "system_metrics": 30}
JOBS = [
    (
        "archival: seal partitions",
        "archival.tasks.seal_partitions",
        15,
        "minutes",
        "Seal partitions past their range and the late-row grace: read indexes, VACUUM FREEZE ANALYZE "
        "(docs/storage.md).",
    ),
    (
        "archival: verify cold files",
        "archival.tasks.verify_cold_files",
        1,
        "days",
        "Re-read every cold file from the archive storage; alert on a missing or corrupt one (docs/storage.md).",
    ),
    (
        "archival: tier partitions",
        "archival.tasks.tier_partitions",
        1,
        "hours",
        "Write sealed partitions older than their policy's cold age as verified Parquet, then drop them "
        "(docs/storage.md).",
    ),
]


def seed(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    for table, days in COLD_AFTER_DAYS.items():
        RetentionPolicy.objects.filter(table=table, cold_after_days__isnull=True).update(cold_after_days=days)
    for name, task, every, period, description in JOBS:
        schedule_interval_task(apps, name=name, task=task, every=every, period=period, description=description)


def unseed(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    for table, days in COLD_AFTER_DAYS.items():
        RetentionPolicy.objects.filter(table=table, cold_after_days=days).update(cold_after_days=None)
    unschedule_tasks(apps, *(name for name, *_ in JOBS))


class Migration(migrations.Migration):
    dependencies = [
        ("archival", "0005_cold_tier"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
