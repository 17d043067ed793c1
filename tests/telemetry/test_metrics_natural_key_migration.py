"""Migration 0007 adds system_metrics' natural key on a table that may already hold the duplicates of earlier
retries: it keeps the first row of each sample, deletes the others, then builds the unique index."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from telemetry.services.partitions import partitions_apply

BEFORE = ("telemetry", "0006_idempotency_key_purge_schedule")
MOMENT = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)


def migrate(*targets: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets))


def leaf_nodes() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def sample_index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('uniq_system_metrics_sample') IS NOT NULL")
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)  # the migration builds indexes CONCURRENTLY: no enclosing transaction
def test_the_natural_key_migration_keeps_the_first_of_each_duplicated_sample():
    partitions_apply(moment=MOMENT)
    migrate(BEFORE)
    try:
        # given retried batches stored twice before the key existed (a camera's sample, a host sample), and
        # a sample whose labels differ only in key order
        assert not sample_index_exists()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO system_metrics (camera_id, timestamp, name, value, labels, alert_level) VALUES "
                "('2b9c3c1e-8d3a-4a59-9b1a-0e7d7c1f0a11', %(t)s, 'fps', 29.0, '{\"gpu\": \"0\", \"x\": 1}', 'none'),"
                "('2b9c3c1e-8d3a-4a59-9b1a-0e7d7c1f0a11', %(t)s, 'fps', 30.0, '{\"x\": 1, \"gpu\": \"0\"}', 'none'),"
                "(NULL, %(t)s, 'load', 1.0, '{}', 'none'), (NULL, %(t)s, 'load', 2.0, '{}', 'none'),"
                "(NULL, %(t)s, 'load', 1.0, '{\"host\": \"a\"}', 'none')",
                {"t": MOMENT},
            )

        # when
        migrate(*leaf_nodes())

        # then
        assert sample_index_exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, value FROM system_metrics ORDER BY name, value")
            assert cursor.fetchall() == [("fps", 29.0), ("load", 1.0), ("load", 1.0)]
    finally:
        migrate(*leaf_nodes())
