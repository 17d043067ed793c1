"""The realtime status view's form for Citus (`manage.py citus distribute` installs it; docs/scaling.md).

On one node the view (telemetry 0002) finds each camera's latest fps with a LEFT JOIN LATERAL … LIMIT 1:
one backward index probe per camera, cheap whatever the filter. Citus refuses a LATERAL outer join from a
reference table (cameras) into a distributed one (system_metrics), so on Citus the latest fps of the last
five minutes comes from a DISTINCT ON (camera_id) subquery instead: grouped by the distribution column, it
runs on every shard in parallel, and the coordinator joins its small result with cameras. Same columns,
same types, same answers (tests/citus runs the view's tests on a cluster).
"""

REALTIME_CAMERA_STATUS_ON_CITUS = """
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
LEFT JOIN (
    SELECT DISTINCT ON (m.camera_id) m.camera_id, m.value
    FROM system_metrics m
    WHERE m.name = 'fps'
      AND m."timestamp" > now() - interval '5 minutes'
    ORDER BY m.camera_id, m."timestamp" DESC
) latest_fps ON latest_fps.camera_id = c.id
WHERE c.is_active
"""
