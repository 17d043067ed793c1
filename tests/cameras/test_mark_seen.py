"""cameras_mark_seen: last_seen_at moves forward once per batch, and a camera another ingest transaction is
moving right now is skipped, never waited for (the same on one node and on Citus, docs/scaling.md)."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from cameras.services.cameras import MARK_SEEN_LOCK_SPACE, cameras_mark_seen
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db

SEEN = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)  # in the past: last_seen_at is never moved past now


def _other_session() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
    )


def test_a_camera_claimed_by_another_transaction_is_skipped_and_the_others_move():
    # Given two cameras, one of them being moved forward by another ingest transaction (holding its claim)
    busy, free = make_camera(), make_camera()
    with _other_session() as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s::text))", [MARK_SEEN_LOCK_SPACE, busy.id])

        # When this batch marks both seen
        updated = cameras_mark_seen(last_seen={busy.id: SEEN, free.id: SEEN})

        other.rollback()
    # Then only the free camera moved, without waiting for the other transaction
    assert updated == 1
    busy.refresh_from_db()
    free.refresh_from_db()
    assert busy.last_seen_at is None
    assert free.last_seen_at == SEEN


def test_last_seen_never_moves_back_nor_within_the_resolution():
    camera = make_camera()
    assert cameras_mark_seen(last_seen={camera.id: SEEN}) == 1

    assert cameras_mark_seen(last_seen={camera.id: SEEN - timedelta(minutes=1)}) == 0
    assert cameras_mark_seen(last_seen={camera.id: SEEN + timedelta(milliseconds=500)}) == 0
    assert cameras_mark_seen(last_seen={camera.id: SEEN + timedelta(seconds=2)}) == 1
    camera.refresh_from_db()
    assert camera.last_seen_at == SEEN + timedelta(seconds=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s", [MARK_SEEN_LOCK_SPACE]
        )
        assert cursor.fetchone()[0] == 1  # transaction-scoped: held by this (test) transaction until it ends
