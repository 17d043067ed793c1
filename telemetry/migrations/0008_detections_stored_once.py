"""A frame's detections are stored once: detection rows gain `attributes` (the sender's extra keys), the
`frame_metadata.detections` JSONB copy stops being written, and the detections table keeps on its parent only
the indexes ingest and the API's reads need (docs/storage.md).

Zero-downtime (docs/migrations.md):
- `attributes` is added nullable without a default: a catalog change, no rewrite.
- `frame_metadata.detections` becomes nullable (catalog only) and leaves the model state: code of this
  release neither reads nor writes it. Its bytes stay in existing rows until their partition goes cold;
  the column itself is dropped by 0009, a catalog-only DROP COLUMN.
- `idx_detections_camera_ts` is built like 0004's BRIN indexes: `ON ONLY` the parent, `CONCURRENTLY` on each
  partition, then attached.
- The type/confidence, bbox GiST and track indexes leave the parent in 0011.
"""

from django.db import migrations, models

TABLE = "detections"
INDEX = "idx_detections_camera_ts"


def create_index(apps, schema_editor):
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {quote(INDEX)} ON ONLY {quote(TABLE)} (camera_id, timestamp)")
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
            [TABLE],
        )
        for (partition,) in cursor.fetchall():
            partition_index = f"{partition}_camera_ts"[:63]
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(partition_index)} "
                f"ON {quote(partition)} (camera_id, timestamp)"
            )
            cursor.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass AND inhparent = %s::regclass",
                [partition_index, INDEX],
            )
            if cursor.fetchone() is None:
                cursor.execute(f"ALTER INDEX {quote(INDEX)} ATTACH PARTITION {quote(partition_index)}")


def drop_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX)}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("telemetry", "0007_system_metrics_natural_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="detection",
            name="attributes",
            field=models.JSONField(
                blank=True,
                null=True,
                help_text="What the sender added beyond the normalized columns (NULL when nothing): the detection "
                "is returned as sent by telemetry.services.batches.detection_document.",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE frame_metadata ALTER COLUMN detections DROP NOT NULL",
                    "ALTER TABLE frame_metadata ALTER COLUMN detections SET NOT NULL",
                ),
            ],
            state_operations=[migrations.RemoveField(model_name="framemetadata", name="detections")],
        ),
        migrations.RunPython(create_index, drop_index),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="detection",
                    index=models.Index(fields=["camera", "timestamp"], name="idx_detections_camera_ts"),
                ),
            ],
        ),
    ]
