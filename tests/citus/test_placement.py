"""The cluster holds the tables where the platform declares them, and `citus distribute` is idempotent."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from archival.selectors.partitions import partition_details
from archival.selectors.retention import table_sizes
from its_camera.db.citus import distributed_tables, reference_tables
from telemetry.selectors.partitions import partition_ranges
from telemetry.services.partitions import partitions_apply
from telemetry.services.tiering import partition_seal

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _placements() -> dict[str, tuple[str, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables"
        )
        return {name: (kind, column, colocation) for name, kind, column, colocation in cursor.fetchall()}


def test_reference_and_distributed_tables_are_placed_as_declared_partitions_included(db):
    placements = _placements()

    for table in reference_tables():
        assert placements[table][0] == "reference"
    groups = set()
    for entry in distributed_tables():
        assert placements[entry.table][:2] == ("distributed", entry.column)
        groups.add(placements[entry.table][2])
        assert placements[f"{entry.table}_default"][:2] == ("distributed", entry.column)
    assert len(groups) == 1  # co-located: a camera's frames, detections and metrics share a shard
    assert placements["alerts"][0] == "local"  # on the coordinator, chained to cameras by its foreign key
    assert "auth_user" not in placements
    assert "django_celery_beat_periodictask" not in placements


def test_distribute_again_has_nothing_to_do_and_dry_run_changes_nothing(db, capsys):
    call_command("citus", "distribute", "--dry-run")
    call_command("citus", "distribute")

    output = capsys.readouterr().out
    assert output.count("Nothing to do: every table is placed.") == 2
    assert "would run" not in output


def test_a_partition_created_after_distribution_is_distributed_with_its_parent(db):
    partitions_apply(moment=datetime(2031, 3, 4, 12, tzinfo=UTC))

    placements = _placements()
    assert placements["frame_metadata_p20310304"][:2] == ("distributed", "camera_id")
    assert placements["system_metrics_p203103"][:2] == ("distributed", "camera_id")


def test_partition_sizes_are_the_sizes_of_their_shards_not_of_the_coordinators_shell(db):
    # Given the committed partitions of the distributed tables (their shards live on the workers)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(citus_total_relation_size(inhrelid)), sum(pg_total_relation_size(inhrelid))"
            " FROM pg_inherits WHERE inhparent = 'frame_metadata'::regclass"
        )
        shards, shell = cursor.fetchone()

    # When retention and partition health measure them
    sizes = table_sizes()
    details = {detail.name: detail for detail in partition_details("frame_metadata")}

    # Then they count the shards' bytes
    assert sizes["frame_metadata"] == shards > shell
    with connection.cursor() as cursor:
        cursor.execute("SELECT citus_total_relation_size('frame_metadata_default')")
        assert details["frame_metadata_default"].total_bytes == cursor.fetchone()[0]


def _on_workers(query: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT result FROM run_command_on_workers(%s) ORDER BY nodeport", [query])
        return [int(result) for (result,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_sealing_a_distributed_partition_indexes_and_vacuums_every_shard(settings):
    # Given a committed partition of detections (its shards spread over both workers)
    settings.TELEMETRY_SEALED_INDEXES = {"detections": ["type_confidence"], "frame_metadata": [], "system_metrics": []}
    partition = next(p for p in partition_ranges("detections") if not p.is_default)
    index = f"{partition.name}_type_confidence"
    try:
        # When it is sealed (CREATE INDEX CONCURRENTLY, VACUUM (FREEZE, ANALYZE), outside a transaction)
        result = partition_seal(
            table="detections", partition=partition.name, start=partition.start, end=partition.end, now=NOW
        )

        # Then every shard has the index, valid, and was vacuumed and analyzed on its worker
        assert result.indexes == [index]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), citus_total_relation_size(%s::regclass) FROM pg_dist_shard"
                " WHERE logicalrelid = %s::regclass",
                [partition.name, partition.name],
            )
            shards, size = cursor.fetchone()
        indexed = _on_workers(
            "SELECT count(*) FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"  # noqa: S608 - our names
            f" WHERE relname LIKE '{index}\\_%' AND indisvalid"
        )
        assert sum(indexed) == shards
        assert all(indexed)  # on both workers
        vacuumed = _on_workers(
            f"SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE '{partition.name}\\_%'"  # noqa: S608
            " AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"
        )
        assert sum(vacuumed) == shards
        assert result.sealed_bytes == size  # the shards' bytes, not the coordinator's shell
    finally:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index)))
