"""The seed's indexes and the realtime view exist in the migrated database, under their names."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cameras.models import RealtimeCameraStatus
from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db

SEED_INDEXES = {
    # name: a fragment its definition must contain
    "idx_cameras_name": "(name)",
    "idx_cameras_status": "(status)",
    "idx_cameras_active_location": "(is_active, location)",
    "idx_cameras_zone_active": "(zone_id, is_active)",
    "idx_cameras_config_gin": "USING gin (config)",
    "idx_cameras_tags_gin": "USING gin (tags)",
    "idx_cameras_location_gist": "USING gist (point(longitude, latitude))",
}


def test_every_seed_index_on_cameras_is_present():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'cameras'")
        indexes = dict(cursor.fetchall())

    missing = {name for name in SEED_INDEXES if name not in indexes}
    assert not missing, f"seed indexes missing: {sorted(missing)}"
    for name, fragment in SEED_INDEXES.items():
        assert fragment in indexes[name], (name, indexes[name])
    assert "UNIQUE" in indexes["idx_cameras_name"]


def test_one_active_alert_per_subject_is_a_partial_unique_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'alerts_one_active_per_subject'")
        (definition,) = cursor.fetchone()

    assert "UNIQUE" in definition
    assert "NULLS NOT DISTINCT" in definition
    assert "WHERE" in definition


def test_realtime_view_classifies_connection_by_last_seen_and_lists_active_cameras_only():
    # Given cameras last seen at different times, one never seen and one inactive
    now = timezone.now()
    zone = make_zone()
    streaming = make_camera(last_seen_at=now - timedelta(seconds=10), last_fps=24.5, zone=zone)
    recent = make_camera(last_seen_at=now - timedelta(minutes=2))
    stale = make_camera(last_seen_at=now - timedelta(minutes=10))
    never_seen = make_camera(last_seen_at=None)
    make_camera(last_seen_at=now, is_active=False)

    # When the view is read
    rows = {row.id: row for row in RealtimeCameraStatus.objects.all()}

    # Then each active camera has its connection status, the inactive one is absent
    assert {camera_id: row.connection_status for camera_id, row in rows.items()} == {
        streaming.id: "streaming",
        recent.id: "recent",
        stale.id: "stale",
        never_seen.id: "stale",
    }
    assert rows[streaming.id].fps_current == 24.5
    assert rows[streaming.id].zone_id == zone.id
    assert rows[recent.id].fps_current is None


def test_realtime_view_columns_keep_their_order():
    # Telemetry replaces the view with CREATE OR REPLACE VIEW, which only allows appending columns.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'realtime_camera_status' ORDER BY ordinal_position"
        )
        columns = [name for (name,) in cursor.fetchall()]

    assert columns[:11] == [
        "id",
        "name",
        "status",
        "zone_id",
        "is_active",
        "location",
        "latitude",
        "longitude",
        "last_seen_at",
        "connection_status",
        "fps_current",
    ]
