import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.exceptions import ConflictError
from cameras.models import Alert
from cameras.services.alerts import alert_acknowledge, alert_raise, alert_resolve, alert_resolve_one
from tests.cameras.factories import make_camera

pytestmark = pytest.mark.django_db


def test_raise_opens_an_alert():
    camera = make_camera()

    alert = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone", details={"seconds": 400})

    assert alert.pk is not None
    stored = Alert.objects.get()
    assert (stored.camera, stored.kind, stored.state, stored.message) == (camera, "camera_offline", "open", "gone")
    assert stored.details == {"seconds": 400}
    assert stored.severity == AlertSeverity.WARNING


def test_raising_again_updates_the_active_alert_instead_of_duplicating():
    camera = make_camera()
    first = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone 5 min")
    later = timezone.now() + timedelta(minutes=5)

    second = alert_raise(
        kind=AlertKind.CAMERA_OFFLINE,
        camera=camera,
        message="gone 10 min",
        severity=AlertSeverity.CRITICAL,
        details={"minutes": 10},
        now=later,
    )

    assert second.pk == first.pk
    stored = Alert.objects.get()
    assert (stored.message, stored.severity, stored.details) == ("gone 10 min", "critical", {"minutes": 10})
    assert stored.opened_at == first.opened_at
    assert stored.updated_at == later


def test_system_alerts_are_told_apart_by_subject_and_deduplicated_without_a_camera():
    alert_raise(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata", message="3 rows")
    alert_raise(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="frame_metadata", message="5 rows")
    alert_raise(kind=AlertKind.PARTITION_DEFAULT_ROWS, subject="detections", message="1 row")

    assert sorted(Alert.objects.values_list("subject", "message")) == [
        ("detections", "1 row"),
        ("frame_metadata", "5 rows"),
    ]
    assert not Alert.objects.filter(camera__isnull=False).exists()


def test_raising_an_acknowledged_alert_keeps_it_acknowledged():
    alert = alert_raise(kind=AlertKind.JOB_FAILED, subject="ensure_partitions", message="failed")
    alert_acknowledge(alert=alert, acknowledged_by="operator")

    again = alert_raise(kind=AlertKind.JOB_FAILED, subject="ensure_partitions", message="failed again")

    assert again.pk == alert.pk
    assert again.state == AlertState.ACKNOWLEDGED
    assert again.message == "failed again"


def test_after_resolution_a_new_raise_opens_a_new_alert():
    camera = make_camera()
    first = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone")

    resolved = alert_resolve(kind=AlertKind.CAMERA_OFFLINE, camera=camera)
    second = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone again")

    assert resolved == 1
    assert second.pk != first.pk
    first.refresh_from_db()
    assert (first.state, first.resolved_by) == (AlertState.RESOLVED, "system")
    assert first.resolved_at is not None
    assert Alert.objects.filter(state=AlertState.OPEN).count() == 1


def test_resolve_touches_only_the_matching_alert():
    camera, other = make_camera(), make_camera()
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="a")
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=other, message="b")
    alert_raise(kind=AlertKind.PROCESSING_FAILURES, camera=camera, message="c")
    alert_raise(kind=AlertKind.CAMERA_OFFLINE, message="system-wide")

    assert alert_resolve(kind=AlertKind.CAMERA_OFFLINE, camera=camera, resolved_by="ops") == 1
    assert alert_resolve(kind=AlertKind.CAMERA_OFFLINE, camera=camera) == 0

    assert sorted(Alert.objects.filter(state=AlertState.OPEN).values_list("message", flat=True)) == [
        "b",
        "c",
        "system-wide",
    ]
    assert alert_resolve(kind=AlertKind.CAMERA_OFFLINE) == 1  # camera=None: the system alert only
    assert Alert.objects.get(message="b").state == AlertState.OPEN


def test_acknowledge_then_resolve_one_records_who_and_when():
    alert = alert_raise(kind=AlertKind.ARCHIVAL_FAILED, subject="frame_metadata_2026_05", message="checksum")

    alert_acknowledge(alert=alert, acknowledged_by="alice")
    alert_acknowledge(alert=alert, acknowledged_by="bob")  # already acknowledged: first one stays
    alert_resolve_one(alert=alert, resolved_by="carol")
    alert_resolve_one(alert=alert, resolved_by="dave")  # a retry changes nothing

    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by, alert.resolved_by) == ("resolved", "alice", "carol")
    assert alert.acknowledged_at <= alert.resolved_at


def test_a_resolved_alert_cannot_be_acknowledged():
    alert = alert_raise(kind=AlertKind.ROLLUP_LAG, message="lagging")
    alert_resolve_one(alert=alert, resolved_by="ops")

    with pytest.raises(ConflictError, match="already resolved"):
        alert_acknowledge(alert=alert, acknowledged_by="alice")

    alert.refresh_from_db()
    assert alert.acknowledged_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_from_many_workers_leave_one_active_alert():
    # Given one camera and eight threads (eight database sessions) raising the same alert at once
    camera = make_camera()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    alert_ids: list[int] = []

    def worker(number: int) -> None:
        try:
            barrier.wait()
            for attempt in range(10):
                alert = alert_raise(
                    kind=AlertKind.CAMERA_OFFLINE, camera=camera, message=f"w{number} a{attempt}", details={"n": number}
                )
                alert_ids.append(alert.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no worker failed and all 80 raises landed on the same single row
    assert errors == []
    assert len(alert_ids) == 80
    assert len(set(alert_ids)) == 1
    assert Alert.objects.filter(camera=camera).count() == 1
