"""Put `camera_id` in the primary key of frame_metadata, detections and system_metrics, and give host metrics
a camera id (the nil UUID), so the three tables can be distributed by camera on Citus (docs/scaling.md).

Citus refuses a PRIMARY KEY or UNIQUE constraint that does not include the distribution column, and a
distribution column that is NULL. The keys become (camera_id, id, timestamp): id is still unique on its own
(an identity column), the partition key is still there (PostgreSQL needs it), and the camera leads.

Zero downtime on tables that hold data (docs/migrations.md). PostgreSQL cannot build an index CONCURRENTLY on
a partitioned parent, nor add a primary key USING INDEX to one; but when a primary key is added to a parent,
each partition's existing primary key on the same columns is *attached* instead of built. So, per table:

1. (system_metrics) host rows get the nil UUID, in batches of 10,000 per partition; each partition then
   gets `CHECK (camera_id IS NOT NULL) NOT VALID`, `VALIDATE` (a scan that does not block writes), and
   `SET NOT NULL`, which trusts the validated check and does not scan again; the check is dropped.
2. Drop the parent's (id, timestamp) primary key: a catalog change and an unlink per partition, under a
   short ACCESS EXCLUSIVE lock (the session's lock_timeout makes it fail fast rather than queue).
3. Per partition (DEFAULT included): `CREATE UNIQUE INDEX CONCURRENTLY` on (camera_id, id, timestamp), then
   `ADD PRIMARY KEY USING INDEX` (no build, a short lock on that partition only).
4. `ADD PRIMARY KEY (camera_id, id, timestamp)` on the parent: attaches the partitions' keys, builds none
   (except for a partition created by the beat job meanwhile, which is empty).

Between steps 2 and 4 the tables have no primary key; frames stay deduplicated by their unique
(camera_id, timestamp), and ids come from the identity column. Every step checks the catalog first, so a
run interrupted half-way (lock timeout) is simply run again. Cost on a large table: one index build per
partition without blocking writes (about the time of the old primary key's build), one validating scan of
system_metrics, and three short exclusive locks per table.

Deploy order: the code that writes the nil UUID for host metrics ships with this migration; a web process
of the previous release still writing NULL host metrics makes step 1's VALIDATE fail (run again once the old
processes are gone).
"""

from django.db import migrations, models

TABLES = ("frame_metadata", "detections", "system_metrics")
NEW_KEY = ("camera_id", "id", "timestamp")
OLD_KEY = ("id", "timestamp")
HOST_METRICS_CAMERA_ID = "00000000-0000-0000-0000-000000000000"
BATCH = 10_000


def _partitions(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
        "WHERE pg_inherits.inhparent = %s::regclass ORDER BY child.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _primary_key(cursor, table: str) -> tuple[str | None, tuple[str, ...]]:
    cursor.execute(
        "SELECT con.conname, array_agg(att.attname ORDER BY key.ordinality) FROM pg_constraint con "
        "CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS key(attnum, ordinality) "
        "JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = key.attnum "
        "WHERE con.conrelid = %s::regclass AND con.contype = 'p' GROUP BY con.conname",
        [table],
    )
    row = cursor.fetchone()
    return (row[0], tuple(row[1])) if row else (None, ())


def _index_valid(cursor, index: str) -> bool | None:
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = (SELECT to_regclass(quote_ident(%s)))", [index])
    row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _set_primary_key(schema_editor, table: str, columns: tuple[str, ...]) -> None:
    quote = schema_editor.quote_name
    column_list = ", ".join(quote(column) for column in columns)
    with schema_editor.connection.cursor() as cursor:
        name, current = _primary_key(cursor, table)
        if current == columns:
            return
        if name is not None:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for partition in _partitions(cursor, table):
            if _primary_key(cursor, partition)[1] == columns:
                continue
            index = f"{partition}_pkey"[:63]
            if _index_valid(cursor, index) is False:  # left by an interrupted CONCURRENTLY build
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index)}")
            cursor.execute(
                f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {quote(index)} ON {quote(partition)} ({column_list})"
            )
            cursor.execute(
                f"ALTER TABLE {quote(partition)} ADD CONSTRAINT {quote(index)} PRIMARY KEY USING INDEX {quote(index)}"
            )
        cursor.execute(
            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(f'{table}_pkey')} PRIMARY KEY ({column_list})"
        )


def _host_metrics_not_null(schema_editor) -> None:
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        for partition in _partitions(cursor, "system_metrics"):
            while True:
                cursor.execute(
                    f"UPDATE {quote(partition)} SET camera_id = %s WHERE ctid = ANY(ARRAY("  # noqa: S608 - names from the catalog, quoted
                    f"SELECT ctid FROM {quote(partition)} WHERE camera_id IS NULL LIMIT {BATCH}))",
                    [HOST_METRICS_CAMERA_ID],
                )
                if cursor.rowcount < BATCH:
                    break
            check = f"{partition}_camera_not_null"[:63]
            cursor.execute(
                f"ALTER TABLE {quote(partition)} ADD CONSTRAINT {quote(check)} CHECK (camera_id IS NOT NULL) NOT VALID"
            )
            cursor.execute(f"ALTER TABLE {quote(partition)} VALIDATE CONSTRAINT {quote(check)}")
            cursor.execute(f"ALTER TABLE {quote(partition)} ALTER COLUMN camera_id SET NOT NULL")
            cursor.execute(f"ALTER TABLE {quote(partition)} DROP CONSTRAINT {quote(check)}")
        # Every partition is NOT NULL already: the parent's SET NOT NULL scans nothing.
        cursor.execute("ALTER TABLE system_metrics ALTER COLUMN camera_id SET NOT NULL")


def forward(apps, schema_editor):
    _host_metrics_not_null(schema_editor)
    for table in TABLES:
        _set_primary_key(schema_editor, table, NEW_KEY)


def backward(apps, schema_editor):
    for table in TABLES:
        _set_primary_key(schema_editor, table, OLD_KEY)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE system_metrics ALTER COLUMN camera_id DROP NOT NULL")
        cursor.execute("UPDATE system_metrics SET camera_id = NULL WHERE camera_id = %s", [HOST_METRICS_CAMERA_ID])


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("cameras", "0007_alert_kind_notification_failed"),
        ("telemetry", "0011_detection_lookups_leave_hot_partitions"),
    ]

    operations = [
        # Top level, so `sqlmigrate` (and the linter reading it) lists it as Python instead of running it.
        migrations.RunPython(forward, backward),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="framemetadata",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "camera", "id", "timestamp", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                migrations.AlterField(
                    model_name="detection",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "camera", "id", "timestamp", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                migrations.AlterField(
                    model_name="systemmetric",
                    name="camera",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="cameras.camera",
                    ),
                ),
                migrations.AlterField(
                    model_name="systemmetric",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "camera", "id", "timestamp", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
            ],
        ),
    ]
