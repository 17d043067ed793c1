"""BRIN indexes on frame_metadata.timestamp and detections.timestamp, for the rollups' time-window scans.

The tables are partitioned and hold data, and PostgreSQL cannot `CREATE INDEX CONCURRENTLY` on a partitioned
parent; a plain CREATE INDEX on the parent would block writes to every partition while it builds. So, the
documented zero-downtime way (docs/migrations.md):

1. `CREATE INDEX … ON ONLY parent`: a catalog-only, invalid index on the parent, instant;
2. `CREATE INDEX CONCURRENTLY` on each partition (DEFAULT included), which does not block writes;
3. `ALTER INDEX parent_index ATTACH PARTITION partition_index` for each: once all are attached the parent
   index is valid, and partitions created later get their own index automatically.

Every step is `IF NOT EXISTS` or checks the catalog first, so a migration interrupted half-way runs again.
The linter reads SQL in RunSQL only; these statements run from RunPython because the partition list is
read at migration time.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations

INDEXES = [
    ("frame_metadata", "idx_frame_metadata_ts_brin"),
    ("detections", "idx_detections_ts_brin"),
]
PAGES_PER_RANGE = 32


def _quote(schema_editor, name: str) -> str:
    return schema_editor.quote_name(name)


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for table, index in INDEXES:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {_quote(schema_editor, index)} ON ONLY {_quote(schema_editor, table)} "
                f"USING brin (timestamp) WITH (pages_per_range = {PAGES_PER_RANGE})"
            )
            cursor.execute(
                "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
                "WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
                [table],
            )
            for (partition,) in cursor.fetchall():
                # Partition index names are derived and kept under PostgreSQL's 63-character limit.
                partition_index = f"{partition}_ts_brin"[:63]
                cursor.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_quote(schema_editor, partition_index)} "
                    f"ON {_quote(schema_editor, partition)} USING brin (timestamp) "
                    f"WITH (pages_per_range = {PAGES_PER_RANGE})"
                )
                cursor.execute(
                    "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass AND inhparent = %s::regclass",
                    [partition_index, index],
                )
                if cursor.fetchone() is None:
                    cursor.execute(
                        f"ALTER INDEX {_quote(schema_editor, index)} "
                        f"ATTACH PARTITION {_quote(schema_editor, partition_index)}"
                    )


def drop_indexes(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for _table, index in INDEXES:
            # Dropping the parent index drops the attached partition indexes with it.
            cursor.execute(f"DROP INDEX IF EXISTS {_quote(schema_editor, index)}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("telemetry", "0003_rollups"),
    ]

    operations = [
        # Top level, so `sqlmigrate` (and the linter reading it) lists it as Python instead of running it.
        migrations.RunPython(create_indexes, drop_indexes),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="framemetadata",
                    index=BrinIndex(fields=["timestamp"], name="idx_frame_metadata_ts_brin", pages_per_range=32),
                ),
                migrations.AddIndex(
                    model_name="detection",
                    index=BrinIndex(fields=["timestamp"], name="idx_detections_ts_brin", pages_per_range=32),
                ),
            ],
        ),
    ]
