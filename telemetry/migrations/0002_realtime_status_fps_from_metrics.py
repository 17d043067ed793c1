"""`realtime_camera_status.fps_current` becomes the camera's latest `fps` system metric (SPEC §2, seed §6).

Same columns in the same order and types as cameras 0002 (CREATE OR REPLACE VIEW may not reorder them).
The LATERAL lookup reads idx_system_metrics_camera_name backwards and only looks at the last five
minutes: now() is fixed at executor start, so PostgreSQL prunes to the current monthly partition
(and DEFAULT) instead of probing every partition for every camera; an fps older than that belongs to a
camera the view already calls stale. Without a recent metric the fps from the last heartbeat shows.
"""

from django.db import migrations

VIEW_WITH_METRIC_FPS = """
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
    COALESCE(latest_fps.value, c.last_fps) AS fps_current
FROM cameras c
LEFT JOIN LATERAL (
    SELECT m.value
    FROM system_metrics m
    WHERE m.camera_id = c.id
      AND m.name = 'fps'
      AND m."timestamp" > now() - interval '5 minutes'
    ORDER BY m."timestamp" DESC
    LIMIT 1
) latest_fps ON true
WHERE c.is_active
"""

# cameras 0002's definition, frozen here so this migration reverses to exactly what it replaced.
VIEW_WITH_HEARTBEAT_FPS = """
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


class Migration(migrations.Migration):
    dependencies = [
        ("cameras", "0002_realtime_camera_status"),
        ("telemetry", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(VIEW_WITH_METRIC_FPS, VIEW_WITH_HEARTBEAT_FPS),
    ]
