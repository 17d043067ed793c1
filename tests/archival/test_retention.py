"""Retention: export → verify → drop, restore, failures that leave data in place, delete policies, size caps."""

import gzip
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection

from archival.choices import ArchiveAction, ArchiveReason, ArchiveState
from archival.models import ArchiveRun, RetentionPolicy
from archival.services import archives
from archival.services.archives import archive_restore
from archival.services.retention import retention_apply
from cameras.choices import AlertKind, AlertState
from cameras.models import Alert
from tests.archival.conftest import (
    count_rows,
    insert_frames,
    only_policy,
    partition_names,
    rows_fingerprint,
)
from tests.archival.storages import BlockingStorage

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # frames keep 6 months: cut-off 2026-05-25 10:00 UTC
OLD_DAY = datetime(2026, 5, 24, tzinfo=UTC)  # wholly before the cut-off
STRADDLING_DAY = datetime(2026, 5, 25, tzinfo=UTC)  # starts before the cut-off, ends after it
DAY = timedelta(days=1)
STATIC = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
DEFAULT = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}


def archive_storage_setting(backend: str, location: str) -> dict:
    return {**DEFAULT, **STATIC, "archive": {"BACKEND": backend, "OPTIONS": {"location": location}}}


@pytest.fixture
def old_frames(policies, make_partitions):
    """Frames on the day before the cut-off and on the day that straddles it."""
    make_partitions(STRADDLING_DAY)  # creates 2026-05-24 (one behind) to 14 days ahead
    insert_frames(OLD_DAY, 3000, step_seconds=20)
    insert_frames(STRADDLING_DAY, 1000, step_seconds=60)
    only_policy("frame_metadata")
    return policies["frame_metadata"]


@pytest.mark.django_db
def test_the_seed_schedule_is_the_default_set_of_policies():
    policies = {p.table: (p.name, p.keep_for, p.keep_unit, p.method, p.enabled) for p in RetentionPolicy.objects.all()}

    assert policies == {
        "frame_metadata": ("frame_metadata_retention", 6, "months", "export", True),
        "system_metrics": ("system_metrics_retention", 12, "months", "export", True),
        "detections": ("detections_retention", 3, "months", "delete", True),
        "django_session": ("user_sessions_retention", 30, "days", "delete", True),
        "alerts": ("resolved_alerts_retention", 90, "days", "delete", True),
    }


def test_a_partition_is_archived_only_when_all_its_range_is_older_than_the_cutoff(old_frames):
    result = retention_apply(now=NOW)

    runs = [(run.partition, run.state, run.rows) for run in result.runs]
    assert runs == [("frame_metadata_p20260524", ArchiveState.DROPPED, 3000)]
    assert "frame_metadata_p20260524" not in partition_names("frame_metadata")
    assert "frame_metadata_p20260525" in partition_names("frame_metadata")
    assert count_rows("frame_metadata") == 1000  # the straddling day keeps every row, in-window or not


def test_export_verify_drop_then_restore_gives_back_identical_rows(old_frames, archive_root):
    before = rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY)

    run = retention_apply(now=NOW).runs[0]

    manifest = json.loads((archive_root / run.manifest_location).read_bytes())
    data = (archive_root / run.location).read_bytes()
    assert manifest["rows"] == run.rows == 3000
    assert manifest["sha256"] == run.checksum == hashlib.sha256(data).hexdigest()
    assert manifest["content_sha256"] == hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert [c["name"] for c in manifest["columns"]][:2] == ["id", "timestamp"]
    assert (manifest["range"]["start"], manifest["range"]["end"]) == (
        "2026-05-24T00:00:00+00:00",
        "2026-05-25T00:00:00+00:00",
    )
    assert rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY) == (0, hashlib.md5(b"").hexdigest())  # noqa: S324

    restore = archive_restore(source=run, requested_by="test")

    assert restore.state == ArchiveState.RESTORED, restore.error
    assert restore.rows == 3000
    assert restore.restored_from == run
    assert rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY) == before
    assert archives.partition_content_checksum(table="frame_metadata", partition="frame_metadata_p20260524") == (
        run.content_checksum
    )


def test_a_restored_partition_is_held_from_retention_until_its_hold_ends(old_frames):
    run = retention_apply(now=NOW).runs[0]
    archive_restore(source=run, hold_days=7)

    held = retention_apply(now=NOW)  # the restore was "now" on the wall clock: hold until a week later

    assert held.runs == []
    assert count_rows("frame_metadata_p20260524") == 3000


@pytest.mark.parametrize("backend", ["TruncatingStorage", "CorruptingStorage"])
def test_a_damaged_archive_fails_verification_and_the_partition_is_not_dropped(old_frames, settings, tmp_path, backend):
    settings.STORAGES = archive_storage_setting(f"tests.archival.storages.{backend}", str(tmp_path / "bad"))
    before = rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY)

    result = retention_apply(now=NOW)

    (run,) = result.runs
    assert run.state == ArchiveState.FAILED
    assert "ArchiveVerificationError" in run.error
    assert "frame_metadata_p20260524" in partition_names("frame_metadata")
    assert rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY) == before
    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject="frame_metadata_retention")
    assert alert.state == AlertState.OPEN
    assert alert.details["archive_runs"] == [run.pk]


def test_a_full_disk_or_failed_upload_keeps_the_partition_and_raises_an_alert(old_frames, settings, tmp_path):
    settings.STORAGES = archive_storage_setting("tests.archival.storages.FullDiskStorage", str(tmp_path / "full"))
    before = rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY)

    result = retention_apply(now=NOW)

    (run,) = result.runs
    assert run.state == ArchiveState.FAILED
    assert "No space left on device" in run.error
    assert "frame_metadata_p20260524" in partition_names("frame_metadata")
    assert rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY) == before
    alert = Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED, subject="frame_metadata_retention")
    assert alert.state == AlertState.OPEN


def test_a_crash_between_export_and_drop_leaves_the_data_and_the_next_run_completes(old_frames, monkeypatch):
    def worker_killed(*args, **kwargs):
        raise SystemError("worker lost between export and drop")

    monkeypatch.setattr(archives, "_detach_and_drop", worker_killed)
    first = retention_apply(now=NOW).runs[0]

    assert first.state == ArchiveState.FAILED
    assert first.location  # the export got as far as storage
    assert count_rows("frame_metadata_p20260524") == 3000

    monkeypatch.undo()
    second = retention_apply(now=NOW).runs[0]

    assert second.state == ArchiveState.DROPPED
    assert second.partition == first.partition
    assert "frame_metadata_p20260524" not in partition_names("frame_metadata")
    assert Alert.objects.get(kind=AlertKind.ARCHIVAL_FAILED).state == AlertState.RESOLVED


def test_a_run_left_running_by_a_dead_worker_is_marked_and_redone(old_frames):
    ghost = ArchiveRun.objects.create(
        action=ArchiveAction.EXPORT,
        table="frame_metadata",
        partition="frame_metadata_p20260524",
        state=ArchiveState.RUNNING,
        started_at=NOW - timedelta(hours=1),
    )

    result = retention_apply(now=NOW)

    ghost.refresh_from_db()
    assert ghost.state == ArchiveState.FAILED
    assert "Interrupted" in ghost.error
    assert result.interrupted == 1
    assert [run.state for run in result.runs] == [ArchiveState.DROPPED]


@pytest.mark.django_db(transaction=True)
def test_two_retention_runs_at_once_do_not_process_a_partition_twice(old_frames, settings, tmp_path):
    settings.STORAGES = archive_storage_setting("tests.archival.storages.BlockingStorage", str(tmp_path / "blocking"))
    BlockingStorage.entered.clear()
    BlockingStorage.release.clear()
    outcomes: dict[str, object] = {}

    def run(label: str) -> None:
        try:
            outcomes[label] = retention_apply(now=NOW)
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert BlockingStorage.entered.wait(timeout=30), "the first run never reached the export"
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(timeout=30)
    BlockingStorage.release.set()
    first.join(timeout=60)

    assert outcomes["second"] is None  # the lock was held: nothing done
    assert [run.state for run in outcomes["first"].runs] == [ArchiveState.DROPPED]
    assert ArchiveRun.objects.filter(partition="frame_metadata_p20260524").count() == 1
    assert "frame_metadata_p20260524" not in partition_names("frame_metadata")


def test_a_second_run_finds_nothing_left_to_do(old_frames):
    retention_apply(now=NOW)

    again = retention_apply(now=NOW)

    assert again.runs == []
    assert ArchiveRun.objects.count() == 1


def test_a_delete_policy_drops_expired_partitions_without_exporting(policies, make_partitions, archive_root):
    make_partitions(datetime(2026, 8, 25, tzinfo=UTC))  # detections keep 3 months: cut-off 2026-08-25 10:00
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO detections (camera_id, timestamp, object_type, confidence, bbox_x1, bbox_y1, bbox_x2, bbox_y2)"
            " SELECT gen_random_uuid(), '2026-08-24 12:00+00', 'car', 0.9, 0, 0, 1, 1 FROM generate_series(1, 50)"
        )
    only_policy("detections")

    (run,) = retention_apply(now=NOW).runs

    assert (run.action, run.state, run.partition) == (ArchiveAction.DROP, ArchiveState.DROPPED, "detections_p20260824")
    assert run.location == ""
    assert not archive_root.exists() or not any(archive_root.rglob("*.copy.gz"))
    assert count_rows("detections") == 0


def test_past_the_size_cap_the_oldest_partitions_go_first_but_never_the_current_one(policies, make_partitions):
    make_partitions(NOW - 3 * DAY)
    make_partitions(NOW)
    for offset in (4, 3, 2, 1, 0):
        insert_frames(NOW.replace(hour=0) - offset * DAY, 500, step_seconds=60)
    only_policy("frame_metadata")
    policy = policies["frame_metadata"]
    policy.size_cap_bytes = 1  # everything is over the cap
    policy.save()

    result = retention_apply(now=NOW)

    dropped = [run.partition for run in result.runs if run.state == ArchiveState.DROPPED]
    assert dropped == [f"frame_metadata_p{(NOW - offset * DAY):%Y%m%d}" for offset in (4, 3, 2, 1)]
    assert {run.reason for run in result.runs} == {ArchiveReason.SIZE_CAP}
    assert count_rows("frame_metadata") == 500  # today's partition stays, whatever the cap


def test_a_run_is_bounded_and_the_rest_waits_for_the_next_run(policies, make_partitions, settings):
    settings.ARCHIVE_MAX_PARTITIONS_PER_RUN = 2
    make_partitions(datetime(2026, 5, 1, tzinfo=UTC))  # 2026-04-30 to 2026-05-15, all past the cut-off
    only_policy("frame_metadata")

    first = retention_apply(now=NOW)

    assert len(first.runs) == 2
    assert first.deferred == 14
    assert len(retention_apply(now=NOW).runs) == 2


def test_plain_tables_lose_old_rows_in_bounded_batches(policies, settings):
    settings.ARCHIVE_DELETE_BATCH_SIZE = 2
    settings.ARCHIVE_DELETE_MAX_BATCHES = 2
    only_policy("django_session")
    RetentionPolicy.objects.filter(table="alerts").update(enabled=True)
    for index in range(5):
        Session.objects.create(session_key=f"old{index}", session_data="x", expire_date=NOW - timedelta(days=40))
    Session.objects.create(session_key="recent", session_data="x", expire_date=NOW - timedelta(days=3))
    old = NOW - timedelta(days=100)
    Alert.objects.create(
        kind="camera_offline", subject="a", message="old resolved", state=AlertState.RESOLVED, resolved_at=old
    )
    Alert.objects.create(
        kind="camera_offline",
        subject="b",
        message="recent resolved",
        state=AlertState.RESOLVED,
        resolved_at=NOW - timedelta(days=10),
    )
    Alert.objects.create(kind="camera_offline", subject="c", message="old but still open", state=AlertState.OPEN)

    first = retention_apply(now=NOW)

    assert {(run.table, run.state, run.rows) for run in first.runs} == {
        ("django_session", ArchiveState.DELETED, 4),  # 2 batches of 2: the fifth waits
        ("alerts", ArchiveState.DELETED, 1),
    }
    assert sorted(Alert.objects.values_list("message", flat=True)) == ["old but still open", "recent resolved"]
    retention_apply(now=NOW)
    assert list(Session.objects.values_list("session_key", flat=True)) == ["recent"]


def test_dry_run_shows_the_plan_and_changes_nothing(old_frames, capsys):
    call_command("archive", "run", "--dry-run", "--now", NOW.isoformat())

    out = capsys.readouterr().out
    assert "would export  frame_metadata_p20260524" in out
    assert "frame_metadata_p20260525" not in out
    assert ArchiveRun.objects.count() == 0
    assert count_rows("frame_metadata") == 4000


def test_archive_command_runs_restores_and_verifies(old_frames, capsys):
    call_command("archive", "run", "--policy", "frame_metadata_retention", "--now", NOW.isoformat())
    run = ArchiveRun.objects.get()
    call_command("archive", "verify", str(run.pk))
    call_command("archive", "restore", str(run.pk))

    out = capsys.readouterr().out
    assert "dropped  export  frame_metadata_p20260524" in out
    assert ": OK" in out
    assert "Restored 3000 row(s) into frame_metadata_p20260524" in out
    assert count_rows("frame_metadata") == 4000


def test_restore_from_a_manifest_path_copied_elsewhere(old_frames, archive_root, tmp_path):
    run = retention_apply(now=NOW).runs[0]
    elsewhere = tmp_path / "copied"
    elsewhere.mkdir()
    for name in (run.location, run.manifest_location):
        (elsewhere / (archive_root / name).name).write_bytes((archive_root / name).read_bytes())

    call_command("archive", "restore", str(elsewhere / (archive_root / run.manifest_location).name))

    assert count_rows("frame_metadata_p20260524") == 3000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "--policy", "no_such_policy"], "No retention policy named"),
        (["run", "--now", "2026-11-25T10:00:00"], "must carry a time zone"),
        (["restore", "999999"], "No archive run 999999"),
        (["restore", "missing/manifest.json"], "No manifest at missing/manifest.json"),
        (["verify", "999999"], "has no archive"),
    ],
)
def test_archive_command_refuses_bad_input_and_writes_nothing(old_frames, arguments, message):
    runs_before = ArchiveRun.objects.filter(state=ArchiveState.RESTORED).count()

    with pytest.raises(CommandError, match=message):
        call_command("archive", *arguments)

    assert ArchiveRun.objects.filter(state=ArchiveState.RESTORED).count() == runs_before
    assert count_rows("frame_metadata") == 4000


def test_restore_over_an_existing_partition_is_refused_and_changes_nothing(old_frames):
    run = retention_apply(now=NOW).runs[0]
    archive_restore(source=run)
    before = rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY)

    again = archive_restore(source=run)

    assert again.state == ArchiveState.FAILED
    assert "already covers this range" in again.error
    assert rows_fingerprint("frame_metadata", OLD_DAY, OLD_DAY + DAY) == before


def test_restore_of_a_damaged_archive_creates_nothing(old_frames, archive_root):
    run = retention_apply(now=NOW).runs[0]
    path = archive_root / run.location
    path.write_bytes(path.read_bytes()[:-100])

    restore = archive_restore(source=run)

    assert restore.state == ArchiveState.FAILED
    assert "frame_metadata_p20260524" not in partition_names("frame_metadata")
    assert Alert.objects.filter(kind=AlertKind.ARCHIVAL_FAILED, state=AlertState.OPEN).count() == 1
    with pytest.raises(CommandError, match=r"fails verification|not a complete gzip stream"):
        call_command("archive", "verify", str(run.pk))


def test_archive_run_and_restore_show_their_progress(old_frames, capsys):
    call_command("archive", "run", "--policy", "frame_metadata_retention", "--now", NOW.isoformat())
    run = ArchiveRun.objects.get()
    call_command("archive", "restore", str(run.pk))
    out = capsys.readouterr().out
    assert "retention frame_metadata_retention (export frame_metadata_p20260524): 0/1 partition(s) (0%)" in out
    assert "retention frame_metadata_retention (dropped frame_metadata_p20260524): 1/1 partition(s) (100%)" in out
    assert (
        f"restore frame_metadata_p20260524 (loading, bytes of the archive file): {run.bytes}/{run.bytes} B (100%)"
        in out
    )
