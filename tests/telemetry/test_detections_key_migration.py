"""Migration 0013 drops detections' primary key (the largest index of a hot day, which no query reads) and its
reverse builds it back on every partition; a repeated batch is still refused whole by its frames' unique key."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from telemetry.services.partitions import partitions_apply

BEFORE = ("telemetry", "0012_camera_in_telemetry_keys")
AFTER = ("telemetry", "0013_detections_without_a_primary_key")
MOMENT = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)


def migrate(*targets: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate(list(targets))


def primary_keys() -> set[str]:
    """The relations of the detections tree (parent and partitions) that have a primary key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT con.conrelid::regclass::text FROM pg_constraint con WHERE con.contype = 'p' AND con.conrelid IN "
            "(SELECT relid FROM pg_partition_tree('detections'))"
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)  # the reverse builds indexes CONCURRENTLY: no enclosing transaction
def test_the_detections_key_is_dropped_and_built_back_on_every_partition():
    partitions_apply(moment=MOMENT)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_partition_tree('detections')")
        relations = cursor.fetchone()[0]
    assert relations > 2  # the parent, dated partitions and DEFAULT
    try:
        assert primary_keys() == set()

        migrate(BEFORE)
        assert len(primary_keys()) == relations

        migrate(AFTER)
        assert primary_keys() == set()
    finally:
        migrate(*MigrationExecutor(connection).loader.graph.leaf_nodes())
