"""Name search by trigram, clearer constraint messages, room on each page for in-place heartbeat updates.

- `idx_cameras_name_trgm`: GIN trigram index on UPPER(name), the expression Django's `icontains`
  compiles to, so `?search=` does not scan the table. Built CONCURRENTLY (no write lock on cameras).
- fillfactor 90: a heartbeat rewrites the row; with free space on its page PostgreSQL updates it in
  place (HOT) and skips all eight camera indexes, GIN included.
- The check constraints' messages are what admin forms show; no database change.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("cameras", "0002_realtime_camera_status"),
    ]

    operations = [
        TrigramExtension(),
        # RunSQL rather than AddIndexConcurrently: the SQL is the same, and this form can also be read
        # by sqlmigrate inside a transaction (the migration linter's test does that).
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_cameras_name_trgm" '
                    'ON "cameras" USING gin ((UPPER("name")) gin_trgm_ops)',
                    'DROP INDEX CONCURRENTLY IF EXISTS "idx_cameras_name_trgm"',
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="camera",
                    index=django.contrib.postgres.indexes.GinIndex(
                        django.contrib.postgres.indexes.OpClass(
                            django.db.models.functions.text.Upper("name"), name="gin_trgm_ops"
                        ),
                        name="idx_cameras_name_trgm",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(
            "ALTER TABLE cameras SET (fillfactor = 90)",
            "ALTER TABLE cameras RESET (fillfactor)",
        ),
        migrations.AlterConstraint(
            model_name="camera",
            name="cameras_latitude_in_range",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("latitude__isnull", True), models.Q(("latitude__gte", -90), ("latitude__lte", 90)), _connector="OR"
                ),
                name="cameras_latitude_in_range",
                violation_error_message="Latitude must be between -90 and 90.",
            ),
        ),
        migrations.AlterConstraint(
            model_name="camera",
            name="cameras_longitude_in_range",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("longitude__isnull", True),
                    models.Q(("longitude__gte", -180), ("longitude__lte", 180)),
                    _connector="OR",
                ),
                name="cameras_longitude_in_range",
                violation_error_message="Longitude must be between -180 and 180.",
            ),
        ),
        migrations.AlterConstraint(
            model_name="camera",
            name="cameras_position_complete",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("latitude__isnull", True), ("longitude__isnull", True)),
                    models.Q(("latitude__isnull", False), ("longitude__isnull", False)),
                    _connector="OR",
                ),
                name="cameras_position_complete",
                violation_error_message="Latitude and longitude go together: give both or neither.",
            ),
        ),
        migrations.AlterConstraint(
            model_name="zone",
            name="zones_latitude_range_ordered",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("min_latitude__isnull", True),
                    ("max_latitude__isnull", True),
                    ("min_latitude__lte", models.F("max_latitude")),
                    _connector="OR",
                ),
                name="zones_latitude_range_ordered",
                violation_error_message="The minimum latitude must not be greater than the maximum.",
            ),
        ),
        migrations.AlterConstraint(
            model_name="zone",
            name="zones_longitude_range_ordered",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("min_longitude__isnull", True),
                    ("max_longitude__isnull", True),
                    ("min_longitude__lte", models.F("max_longitude")),
                    _connector="OR",
                ),
                name="zones_longitude_range_ordered",
                violation_error_message="The minimum longitude must not be greater than the maximum.",
            ),
        ),
    ]
