"""The (object_type, confidence), bbox GiST and (camera_id, track_id, timestamp) indexes leave the detections
parent, so hot partitions stop paying for them on every insert (they were 2/3 of a detection row's bytes and
halved ingest once a day outgrew memory: docs/storage.md). No API query uses them; the seal job builds the
ones an operator lists in TELEMETRY_SEALED_INDEXES on each sealed partition (telemetry/services/tiering.py).

Listed in MIGRATION_LINTER_OPTIONS["ignore_name"]: PostgreSQL has no DROP INDEX CONCURRENTLY for an index of a
partitioned table. The DROP is a catalog change under a brief ACCESS EXCLUSIVE lock per partition, bounded by
the migration lock_timeout (docs/migrations.md): it fails fast instead of queueing behind a long query.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0010_partition_tiers"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="detection", name="idx_detections_type_confidence"),
        migrations.RemoveIndex(model_name="detection", name="idx_detections_bbox_gist"),
        migrations.RemoveIndex(model_name="detection", name="idx_detections_track"),
    ]
