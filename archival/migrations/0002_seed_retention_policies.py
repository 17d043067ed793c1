"""The seed's retention schedule as editable policy rows. Re-running never overwrites an operator's edits;
the reverse removes only rows still exactly as seeded."""

from django.db import migrations

SEED = [
    ("frame_metadata_retention", "frame_metadata", 6, "months", "export", "Frames: 6 months, then exported."),
    ("system_metrics_retention", "system_metrics", 12, "months", "export", "Metrics: 12 months, then exported."),
    ("detections_retention", "detections", 3, "months", "delete", "Detections: 3 months (re-derivable from frames)."),
    ("user_sessions_retention", "django_session", 30, "days", "delete", "Sessions: 30 days after they expire."),
    ("resolved_alerts_retention", "alerts", 90, "days", "delete", "Resolved alerts: 90 days after resolution."),
]


def seed_policies(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    for name, table, keep_for, unit, method, description in SEED:
        if RetentionPolicy.objects.filter(table=table).exists():
            continue
        RetentionPolicy.objects.create(
            name=name,
            table=table,
            keep_for=keep_for,
            keep_unit=unit,
            method=method,
            enabled=True,
            description=description,
        )


def unseed_policies(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    for name, table, keep_for, unit, method, _ in SEED:
        RetentionPolicy.objects.filter(
            name=name, table=table, keep_for=keep_for, keep_unit=unit, method=method, size_cap_bytes=None
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("archival", "0001_initial")]

    operations = [migrations.RunPython(seed_policies, unseed_policies)]
