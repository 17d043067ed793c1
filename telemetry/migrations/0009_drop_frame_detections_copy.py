"""Drop `frame_metadata.detections`, the JSONB copy of a frame's detections that 0008 stopped writing.

DROP COLUMN is catalog-only in PostgreSQL (no rewrite; the bytes of old rows go when their partition goes
cold). Listed in MIGRATION_LINTER_OPTIONS["ignore_name"]: the linter flags any dropped column, but code
stopped reading and writing this one in 0008. A rolling deploy applies `migrate telemetry 0008` with the
new code first and this migration once no old process is left (docs/migrations.md).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0008_detections_stored_once"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE frame_metadata DROP COLUMN IF EXISTS detections",
            "ALTER TABLE frame_metadata ADD COLUMN IF NOT EXISTS detections jsonb NULL",
        ),
    ]
