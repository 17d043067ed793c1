from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from telemetry.partitioning import UtcTimePartitioningStrategy, period_start
from telemetry.services.partitions import PartitionAction, partitions_apply, partitions_plan
from tests.telemetry.conftest import partition_row_counts

pytestmark = pytest.mark.django_db

TABLES = ("frame_metadata", "detections", "system_metrics")


def partitions_of(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
            FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE pg_inherits.inhparent = %s::regclass
            """,
            [table],
        )
        return dict(cursor.fetchall())


def test_the_tables_are_range_partitioned_on_timestamp_with_a_default_partition():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, p.partstrat, a.attname
            FROM pg_partitioned_table p
            JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
            WHERE c.relname = ANY(%s)
            """,
            [list(TABLES)],
        )
        rows = {name: (strategy, column) for name, strategy, column in cursor.fetchall()}

    assert rows == {table: ("r", "timestamp") for table in TABLES}
    for table in TABLES:
        assert partitions_of(table) == {f"{table}_default": "DEFAULT"}


def test_apply_creates_daily_and_monthly_partitions_at_utc_midnight_whatever_the_session_time_zone():
    moment = datetime(2026, 11, 24, 22, 45, tzinfo=UTC)  # 23:45 in Paris: the library's bug case
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")
    try:
        partitions_apply(moment=moment)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")

    frames = partitions_of("frame_metadata")
    assert len(frames) == 1 + 1 + 14 + 1  # yesterday, today, 14 ahead, DEFAULT
    assert frames["frame_metadata_p20261124"] == (
        "FOR VALUES FROM ('2026-11-24 00:00:00+00') TO ('2026-11-25 00:00:00+00')"
    )
    assert "detections_p20261208" in partitions_of("detections")
    metrics = partitions_of("system_metrics")
    assert len(metrics) == 1 + 1 + 6 + 1
    assert metrics["system_metrics_p202611"] == (
        "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')"
    )


def test_apply_is_idempotent_and_the_plan_then_shows_everything_existing():
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first = partitions_apply(moment=moment)
    second = partitions_apply(moment=moment)

    assert (
        sum(item.action == PartitionAction.CREATE for item in first) == 16 * 2 + 8
    )  # daily: yesterday, today, 14 ahead; monthly: last, this, 6 ahead
    assert {item.action for item in second} == {PartitionAction.EXISTS}
    assert {item.action for item in partitions_plan(moment=moment)} == {PartitionAction.EXISTS}


def test_rows_waiting_in_default_are_moved_into_the_partition_created_for_them(camera):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO frame_metadata (camera_id, timestamp, frame_number, processing_status, detection_count,"
            " vehicle_count, person_count, bicycle_count)"
            " VALUES (%s, '2026-05-10 23:59:59+00', 1, 'completed', 0, 0, 0, 0)",
            [camera.id],
        )

    items = partitions_apply(moment=datetime(2026, 5, 10, 8, tzinfo=UTC))

    moved = [item for item in items if item.moved_rows]
    assert [(item.partition, item.moved_rows) for item in moved] == [("frame_metadata_p20260510", 1)]
    assert partition_row_counts("frame_metadata") == {"frame_metadata_p20260510": 1}


@override_settings(
    TELEMETRY_PARTITION_SIZES={"frame_metadata": "weekly", "detections": "daily", "system_metrics": "monthly"}
)
def test_a_partition_overlapping_one_of_another_size_is_reported_not_created():
    moment = datetime(2026, 11, 25, tzinfo=UTC)  # a Wednesday
    with override_settings(
        TELEMETRY_PARTITION_SIZES={"frame_metadata": "daily", "detections": "daily", "system_metrics": "monthly"}
    ):
        partitions_apply(moment=moment)

    items = [item for item in partitions_plan(moment=moment) if item.table == "frame_metadata"]

    assert [(item.partition, item.action) for item in items[:2]] == [
        ("frame_metadata_w20261116", PartitionAction.CREATE),  # before the first daily partition
        ("frame_metadata_w20261123", PartitionAction.OVERLAPS),
    ]
    assert "frame_metadata_p20261124" in items[1].detail
    assert PartitionAction.EXISTS not in {item.action for item in items}


def test_period_start_truncates_to_utc_midnight_monday_and_first_of_month():
    moment = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert period_start(moment, "daily") == datetime(2026, 11, 25, tzinfo=UTC)
    assert period_start(moment, "weekly") == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_start(moment, "monthly") == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start(moment, "hourly") == datetime(2026, 11, 25, 23, tzinfo=UTC)
    names = [p.name() for p in UtcTimePartitioningStrategy(size="monthly", ahead=2, behind=0).partitions_around(moment)]
    assert names == ["p202611", "p202612", "p202701"]
    hours = UtcTimePartitioningStrategy(size="hourly", ahead=1, behind=0).partitions_around(moment)
    assert [(p.name(), p.end) for p in hours] == [
        ("p2026112523", datetime(2026, 11, 26, tzinfo=UTC)),
        ("p2026112600", datetime(2026, 11, 26, 1, tzinfo=UTC)),
    ]


def test_partitions_command_plans_then_applies(capsys):
    call_command("partitions", "plan")
    planned = capsys.readouterr().out
    call_command("partitions", "apply")
    applied = capsys.readouterr().out

    assert "create" in planned
    assert "Created 40 partition(s)" in applied
    assert len(partitions_of("frame_metadata")) == 17


def test_psqlextra_manager_setting_points_at_the_same_configuration():
    from django.conf import settings
    from django.utils.module_loading import import_string

    manager = import_string(settings.PSQLEXTRA_PARTITIONING_MANAGER)

    assert [config.model._meta.db_table for config in manager.configs] == list(TABLES)
