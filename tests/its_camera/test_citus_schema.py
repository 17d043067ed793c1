"""The schema can be placed on Citus as declared, checked from the catalog of the single-node test database (no
Citus needed): every key of a table marked for distribution includes its distribution column, and the foreign
keys between reference, distributed and coordinator-local tables are ones Citus accepts. The Citus suite
(tests/citus) then places it on a real cluster."""

import pytest
from django.db import connection

from its_camera.db import citus
from its_camera.db.citus import citus_schema_problems, declared_placement, distributed_tables, reference_tables

pytestmark = pytest.mark.django_db


def test_the_platform_schema_has_nothing_citus_would_refuse():
    assert citus_schema_problems() == []


def test_tables_are_declared_where_the_design_puts_them():
    assert reference_tables() == ["zones", "cameras"]  # zones first: cameras reference them
    assert {(entry.table, entry.column, entry.colocate_with) for entry in distributed_tables()} == {
        ("frame_metadata", "camera_id", None),
        ("detections", "camera_id", "frame_metadata"),
        ("system_metrics", "camera_id", "frame_metadata"),
    }
    for local in (
        "alerts",
        "its_camera_apikey",
        "job_runs",
        "auth_user",
        "django_session",
        "telemetry_idempotency_keys",
    ):
        assert declared_placement(local) == "local"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('its_camera_apikey'), to_regclass('job_runs')")
        assert all(cursor.fetchone()), "the kernel's tables are named as listed above"


def test_every_telemetry_primary_key_starts_with_the_camera():
    keys = {}
    with connection.cursor() as cursor:
        for entry in distributed_tables():
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                [entry.table],
            )
            row = cursor.fetchone()
            keys[entry.table] = row[0] if row else None
    # detections have none by design (telemetry 0013: their frame's unique key refuses a repeated batch)
    assert keys.pop("detections") is None
    assert set(keys.values()) == {'PRIMARY KEY (camera_id, id, "timestamp")'}


def test_a_unique_key_without_the_distribution_column_is_reported(monkeypatch):
    # Given a table marked for distribution whose unique constraint lacks the column, and a local table
    # referencing it
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE citus_probe (camera_id uuid, id bigint, UNIQUE (id))")
        cursor.execute("CREATE TABLE citus_probe_child (probe_id bigint REFERENCES citus_probe (id))")
    monkeypatch.setattr(
        citus, "_DISTRIBUTED", [*citus._DISTRIBUTED, citus.DistributedTable("citus_probe", "camera_id")]
    )

    # When the schema is checked
    problems = citus_schema_problems()

    # Then each is named
    assert any(p.startswith("citus_probe: unique index citus_probe_id_key lacks camera_id") for p in problems)
    assert "citus_probe.camera_id: may be NULL (a distribution column cannot)" in problems
    assert any(p.startswith("foreign key citus_probe_child_probe_id_fkey: local citus_probe_child") for p in problems)
