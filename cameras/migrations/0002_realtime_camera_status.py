"""The seed's `realtime_camera_status` view (§6), plus the camera's last reported fps it reads.

Column order is part of the contract: a later `CREATE OR REPLACE VIEW` (telemetry switches
`fps_current` to the latest `fps` system metric) may only append columns, never reorder or retype
them. Connection status is computed at query time from `last_seen_at`, so it needs no job to stay
true: streaming when seen less than 30 s ago, recent when less than 5 min ago, else stale (also when
never seen).
"""

import django.core.validators
import django.db.models.deletion
import psqlextra.manager.manager
from django.db import migrations, models

CREATE_VIEW = """
CREATE OR REPLACE VIEW realtime_camera_status AS
SELECT
    c.id,
    c.name,
    c.status,
    c.zone_id,
    c.is_active,
    c.location,
    c.latitude,
    c.longitude,
    c.last_seen_at,
    CASE
        WHEN c.last_seen_at > now() - interval '30 seconds' THEN 'streaming'
        WHEN c.last_seen_at > now() - interval '5 minutes' THEN 'recent'
        ELSE 'stale'
    END::varchar(16) AS connection_status,
    c.last_fps AS fps_current
FROM cameras c
WHERE c.is_active
"""

DROP_VIEW = "DROP VIEW IF EXISTS realtime_camera_status"


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="camera",
            name="last_fps",
            field=models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0)]),
        ),
        migrations.AlterModelManagers(
            name="alert",
            managers=[
                ("objects", psqlextra.manager.manager.PostgresManager()),
            ],
        ),
        migrations.RunSQL(CREATE_VIEW, DROP_VIEW),
        migrations.CreateModel(
            name="RealtimeCameraStatus",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=200)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("online", "Online"),
                            ("offline", "Offline"),
                            ("maintenance", "Maintenance"),
                            ("error", "Error"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "zone",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="cameras.zone",
                    ),
                ),
                ("is_active", models.BooleanField()),
                ("location", models.CharField(max_length=255)),
                ("latitude", models.FloatField(null=True)),
                ("longitude", models.FloatField(null=True)),
                ("last_seen_at", models.DateTimeField(null=True)),
                (
                    "connection_status",
                    models.CharField(
                        choices=[
                            ("streaming", "Streaming (< 30 s)"),
                            ("recent", "Recent (< 5 min)"),
                            ("stale", "Stale"),
                        ],
                        max_length=16,
                    ),
                ),
                ("fps_current", models.FloatField(null=True)),
            ],
            options={
                "verbose_name": "realtime camera status",
                "verbose_name_plural": "realtime camera status",
                "db_table": "realtime_camera_status",
                "ordering": ["name"],
                "managed": False,
            },
        ),
    ]
