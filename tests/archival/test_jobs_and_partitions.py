"""Beat jobs: partitions ahead (and not behind retention), the DEFAULT-partition sweep, job records and alerts."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from archival import tasks
from archival.readiness import partitions_ahead
from archival.selectors.partitions import partitions_missing
from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.models import Alert
from its_camera.choices import JobOutcome
from its_camera.db.locks import lock_key
from its_camera.health import registered_checks as health_checks
from its_camera.jobs import job_lock_name
from its_camera.models import JobRun
from tests.archival.conftest import count_rows, insert_frames, partition_names

NOW = datetime(2026, 11, 25, 22, 45, tzinfo=UTC)  # 07:45 the next day in Tokyo, 17:45 in New York


def bounds(partition: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", [partition])
        return cursor.fetchone()[0]


def test_ensure_partitions_is_idempotent_and_utc_aligned_under_a_non_utc_session(policies):
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
    try:
        first = tasks.ensure_partitions(now=NOW.isoformat())
        second = tasks.ensure_partitions(now=NOW.isoformat())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")

    assert (first["outcome"], first["created"], first["expired"]) == (JobOutcome.SUCCEEDED, 16 + 16 + 8, 0)
    assert (second["created"], second["existing"]) == (0, 40)
    assert bounds("frame_metadata_p20261125") == (
        "FOR VALUES FROM ('2026-11-25 00:00:00+00') TO ('2026-11-26 00:00:00+00')"
    )
    assert "frame_metadata_p20261209" in partition_names("frame_metadata")  # 14 days ahead
    assert "system_metrics_p202705" in partition_names("system_metrics")  # 6 months ahead
    assert list(JobRun.objects.values_list("job", "outcome")) == [(tasks.ENSURE_PARTITIONS, JobOutcome.SUCCEEDED)] * 2
    assert partitions_missing(now=NOW) == []


@override_settings(TELEMETRY_PARTITIONS_BEHIND=10)
def test_catching_up_after_downtime_skips_partitions_retention_would_drop_at_once(policies):
    detections = policies["detections"]
    detections.keep_for, detections.keep_unit = 3, "days"  # cut-off 2026-11-22 22:45
    detections.save()

    result = tasks.ensure_partitions(now=NOW.isoformat())

    created = sorted(p for p in partition_names("detections") if not p.endswith("default"))
    assert created[0] == "detections_p20261122"  # straddles the cut-off: kept; the 7 days before are not created
    assert result["expired"] == 7
    assert "frame_metadata_p20261115" in partition_names("frame_metadata")  # frames keep 6 months: all 10 behind


def test_rows_in_the_default_partition_are_alerted_and_moved(policies):
    insert_frames(datetime(2026, 11, 20, 6, tzinfo=UTC), 40, step_seconds=60)  # no partitions at all yet
    insert_frames(datetime(2026, 11, 22, 6, tzinfo=UTC), 10, step_seconds=60)
    insert_frames(datetime(2031, 1, 1, tzinfo=UTC), 2)  # a camera clock years ahead

    outcome = tasks.sweep_default_partitions(now=NOW.isoformat())

    assert outcome["frame_metadata"] == {"found": 52, "moved": 50, "left": 2}
    assert {"frame_metadata_p20261120", "frame_metadata_p20261122"} <= partition_names("frame_metadata")
    assert count_rows("frame_metadata_p20261120") == 40
    assert count_rows("frame_metadata_default") == 2
    alert = Alert.objects.get(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata")
    assert (alert.state, alert.severity) == (AlertState.OPEN, AlertSeverity.WARNING)
    assert alert.details["moved"] == 50
    assert "beyond the partitions-ahead window" in alert.message

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM frame_metadata_default")
    tasks.sweep_default_partitions(now=NOW.isoformat())

    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_a_row_in_default_blocks_nothing_when_ensure_creates_its_partition(policies):
    insert_frames(datetime(2026, 11, 26, 1, tzinfo=UTC), 5)  # tomorrow, before tomorrow's partition exists

    result = tasks.ensure_partitions(now=NOW.isoformat())

    assert result["moved_rows"] == 5
    assert count_rows("frame_metadata_p20261126") == 5
    assert count_rows("frame_metadata_default") == 0


def test_a_failed_job_is_recorded_and_raises_an_alert_and_the_next_good_run_resolves_it(policies, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("catalog unreachable")

    monkeypatch.setattr(tasks, "partitions_ensure", broken)
    with pytest.raises(RuntimeError):
        tasks.ensure_partitions(now=NOW.isoformat())

    run = JobRun.objects.get()
    assert (run.outcome, run.error) == (JobOutcome.FAILED, "RuntimeError: catalog unreachable")
    alert = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject=tasks.ENSURE_PARTITIONS)
    assert (alert.state, alert.severity) == (AlertState.OPEN, AlertSeverity.CRITICAL)

    monkeypatch.undo()
    tasks.ensure_partitions(now=NOW.isoformat())

    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_retention_with_a_failed_archive_records_a_failed_job_and_an_archival_alert(policies, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive directory should be")
    settings.ARCHIVE_ROOT = str(blocker / "archive")
    tasks.ensure_partitions(now=(NOW - timedelta(days=200)).isoformat())
    insert_frames(NOW - timedelta(days=200), 10)

    outcome = tasks.apply_retention(now=NOW.isoformat(), policy="frame_metadata_retention")

    assert outcome["outcome"] == JobOutcome.FAILED
    assert outcome["failed"] == 1
    assert count_rows("frame_metadata") == 10
    assert Alert.objects.filter(kind=AlertKind.ARCHIVAL_FAILED, state=AlertState.OPEN).count() == 1


def test_a_job_whose_lock_is_held_elsewhere_is_skipped_and_recorded(policies):
    params = connection.get_connection_params()
    params.pop("options", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(job_lock_name(tasks.APPLY_RETENTION))])

        outcome = tasks.apply_retention(now=NOW.isoformat())

    assert outcome["outcome"] == JobOutcome.SKIPPED
    assert JobRun.objects.get().outcome == JobOutcome.SKIPPED


def test_the_partitions_health_check_fails_while_the_current_or_next_partition_is_missing(policies):
    # The check runs in its own thread and connection under /health/ready (tests/its_camera/test_health.py
    # covers how a failing non-critical check degrades readiness); here it runs on the test's connection.
    with pytest.raises(RuntimeError, match="frame_metadata from"):
        partitions_ahead()
    tasks.ensure_partitions()

    assert partitions_ahead() == "ok"
    assert health_checks()["partitions"].is_critical() is False  # rows go to DEFAULT meanwhile: degraded


def test_the_beat_schedules_exist_after_migrating():
    from django_celery_beat.models import PeriodicTask

    scheduled = dict(PeriodicTask.objects.filter(task__startswith="archival.").values_list("task", "enabled"))

    assert scheduled == {
        tasks.ENSURE_PARTITIONS: True,
        tasks.SWEEP_DEFAULT_PARTITIONS: True,
        tasks.APPLY_RETENTION: True,
        tasks.SEAL_PARTITIONS: True,
        tasks.TIER_PARTITIONS: True,
        tasks.VERIFY_COLD_FILES: True,
    }


pytestmark = pytest.mark.django_db


def test_rows_no_camera_could_send_never_fail_the_sweep_nor_get_partitions(policies, admin_client):
    # Given rows stored before ingest bounded timestamps: year 1 BC and year 10000 in UTC (PostgreSQL keeps them,
    # Python cannot load them), and 1900 / 1970, which used to get a partition a day each
    for moment in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "1900-01-01T00:00:00Z"):
        insert_frames(moment, 3)  # type: ignore[arg-type] - a text timestamp, as a client sent it
    insert_frames(datetime(1970, 1, 1, tzinfo=UTC), 40, step_seconds=86_400)  # 40 days in a row
    insert_frames(datetime(2026, 11, 20, 6, tzinfo=UTC), 4)  # a late row inside the window: still moved
    partitions_before = partition_names("frame_metadata")

    # When the sweep runs twice
    for _ in range(2):
        outcome = tasks.sweep_default_partitions(now=NOW.isoformat())

    # Then it succeeds, moves the late row, creates nothing for the others and says so in its alert
    assert outcome["frame_metadata"] == {"found": 49, "moved": 0, "left": 49}
    assert partition_names("frame_metadata") - partitions_before == {"frame_metadata_p20261120"}
    assert not JobRun.objects.filter(outcome=JobOutcome.FAILED).exists()
    alert = Alert.objects.get(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata")
    assert "46 row(s) dated before 2026-10-26" in alert.message
    assert "3 row(s) dated beyond the partitions-ahead window" in alert.message
    # And the admin's frame list still opens, leaving out what Python cannot show
    response = admin_client.get("/admin/telemetry/framemetadatarecord/")
    assert response.status_code == 200
