import psycopg
import pytest
from django.db import connection

from its_camera.db.locks import advisory_lock, lock_key

pytestmark = pytest.mark.django_db


def other_session_can_lock(name: str) -> bool:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(name)]).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s)", [lock_key(name)])
        return bool(got)


def test_lock_excludes_other_sessions_until_released():
    with advisory_lock("archival.apply_retention") as acquired:
        assert acquired is True
        assert other_session_can_lock("archival.apply_retention") is False
        assert other_session_can_lock("telemetry.refresh_rollups") is True

    assert other_session_can_lock("archival.apply_retention") is True


def test_lock_held_elsewhere_is_reported_not_waited_for():
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key("job")])
        with advisory_lock("job") as acquired:
            assert acquired is False
        # Released explicitly: a closed connection's backend exits, and frees its locks, a moment later.
        other.execute("SELECT pg_advisory_unlock(%s)", [lock_key("job")])
    with advisory_lock("job") as acquired:
        assert acquired is True


def test_lock_is_released_when_the_block_raises():
    with pytest.raises(RuntimeError), advisory_lock("job"):
        raise RuntimeError("job failed")

    assert other_session_can_lock("job") is True


def test_keys_are_stable_and_distinct():
    assert lock_key("a") == lock_key("a")
    assert lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("a") < 2**63


@pytest.mark.django_db(transaction=True)  # the block closes Django's connection, as a job between steps does
def test_the_lock_survives_the_django_connection_going_back_to_the_pool():
    with advisory_lock("job") as acquired:
        assert acquired is True
        connection.close()  # what close_old_connections does between a job's steps
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert other_session_can_lock("job") is False

    assert other_session_can_lock("job") is True
