"""A natural key on system_metrics: one sample per (camera, metric name, timestamp, labels).

A metrics batch retried without an Idempotency-Key (the first answer lost to a timeout) used to store every
row twice. With this unique index, ingest inserts with `ON CONFLICT DO NOTHING`: the retry writes nothing and
says how many rows were already stored. Host metrics have no camera (NULL): `NULLS NOT DISTINCT` makes them
collide too (PostgreSQL 15+). Labels are compared through `md5(labels::text)`: jsonb's text form is canonical
(keys sorted, whitespace normalised), and the hash keeps the index entry small whatever the labels' size.

Zero-downtime, as 0004: the index is created `ON ONLY` the parent (catalog only), then `CONCURRENTLY` on each
partition, then attached. Rows that already break the key (earlier retries) are deleted first, per partition,
keeping the oldest row (lowest id) of each sample. Re-runnable after an interruption.
"""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import MD5, Cast

INDEX = "uniq_system_metrics_sample"
KEY = '(camera_id, name, "timestamp", md5(labels::text)) NULLS NOT DISTINCT'


def create_index(apps, schema_editor):
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(INDEX)} ON ONLY system_metrics {KEY}")
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = 'system_metrics'::regclass ORDER BY child.relname"
        )
        for (partition,) in cursor.fetchall():
            partition_index = f"{partition}_sample_key"[:63]
            cursor.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s) AND inhparent = %s::regclass",
                [partition_index, INDEX],
            )
            if cursor.fetchone() is not None:
                continue  # done by an earlier, interrupted run
            # An invalid index left by an interrupted CONCURRENTLY build must go before it is built again.
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(partition_index)}")
            duplicates = (
                "WHERE later.camera_id IS NOT DISTINCT FROM earlier.camera_id AND later.name = earlier.name "
                'AND later."timestamp" = earlier."timestamp" AND md5(later.labels::text) = md5(earlier.labels::text) '
                "AND later.id > earlier.id"
            )
            table = quote(partition)  # read from the catalog and quoted; the statement carries no values
            cursor.execute(f"DELETE FROM {table} later USING {table} earlier {duplicates}")  # noqa: S608
            cursor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {quote(partition_index)} ON {quote(partition)} {KEY}")
            cursor.execute(f"ALTER INDEX {quote(INDEX)} ATTACH PARTITION {quote(partition_index)}")


def drop_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(INDEX)}")  # drops the partitions' too


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("telemetry", "0006_idempotency_key_purge_schedule"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="systemmetric",
                    constraint=models.UniqueConstraint(
                        F("camera"),
                        F("name"),
                        F("timestamp"),
                        MD5(Cast("labels", models.TextField())),
                        name=INDEX,
                        nulls_distinct=False,
                    ),
                ),
            ],
        ),
    ]
