"""The seeded detections policy said detections were "re-derivable from frames": true while each frame kept a JSONB
copy of its detections, false since they are stored once (telemetry 0008). Say what is kept after three months.
Only a description still as seeded is changed; the reverse puts it back the same way."""

from django.db import migrations

SEEDED = "Detections: 3 months (re-derivable from frames)."
NOW = (
    "Detections: 3 months, then deleted; frames keep their per-class counts and rollups keep the analytics. "
    "Raise keep-for to keep the boxes as long as their frames."
)


def describe(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    RetentionPolicy.objects.filter(table="detections", description=SEEDED).update(description=NOW)


def undescribe(apps, schema_editor):
    RetentionPolicy = apps.get_model("archival", "RetentionPolicy")
    RetentionPolicy.objects.filter(table="detections", description=NOW).update(description=SEEDED)


class Migration(migrations.Migration):
    dependencies = [("archival", "0006_cold_ages_and_tiering_schedules")]

    operations = [migrations.RunPython(describe, undescribe)]
