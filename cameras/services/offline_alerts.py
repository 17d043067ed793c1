"""`camera_offline` alerts with hysteresis, run by the beat task `cameras.tasks.raise_stale_camera_alerts`.

- A camera is *down* when it has not been heard from for CAMERA_OFFLINE_AFTER_SECONDS (a camera
  never heard from counts from its registration). Then one `camera_offline` alert opens. A silence
  shorter than that (a blip) opens nothing.
- It is *up* when heard from within CAMERA_ONLINE_WITHIN_SECONDS. The alert notes when it was first
  seen up (`recovering_since`) and resolves only after the camera stayed up at every check for
  CAMERA_OFFLINE_RECOVERY_SECONDS.
- A camera that drops again while recovering is flapping: the same alert stays open and its
  `flap_count` goes up, instead of a new alert per flap.
- Inactive cameras and cameras in maintenance are not watched; their offline alerts resolve.

Every step works on at most `batch_size` rows and every decision is a function of the stored rows and
`now`, so a run can be repeated (or run twice) without opening a second alert.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from cameras.choices import ACTIVE_ALERT_STATES, AlertKind, AlertSeverity, AlertState, CameraStatus
from cameras.models import Alert, Camera
from cameras.services.alerts import SYSTEM, alert_raise, alerts_changed
from cameras.status_events import alerts_published


@dataclass
class OfflineAlertsResult:
    raised: int = 0
    flapped: int = 0
    recovering: int = 0
    resolved: int = 0
    more: bool = False  # a step hit its batch size: another run has work to do

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "raised": self.raised,
            "flapped": self.flapped,
            "recovering": self.recovering,
            "resolved": self.resolved,
            "more": self.more,
        }


@dataclass(frozen=True)
class OfflinePolicy:
    offline_after: timedelta
    online_within: timedelta
    recovery: timedelta

    @classmethod
    def from_settings(cls) -> "OfflinePolicy":
        return cls(
            offline_after=timedelta(seconds=settings.CAMERA_OFFLINE_AFTER_SECONDS),
            online_within=timedelta(seconds=settings.CAMERA_ONLINE_WITHIN_SECONDS),
            recovery=timedelta(seconds=settings.CAMERA_OFFLINE_RECOVERY_SECONDS),
        )


def _watched() -> Q:
    return Q(is_active=True) & ~Q(status=CameraStatus.MAINTENANCE)


def _active_offline_alerts() -> QuerySet[Alert]:
    return Alert.objects.filter(kind=AlertKind.CAMERA_OFFLINE, state__in=ACTIVE_ALERT_STATES, camera__isnull=False)


def _describe(camera: Camera, policy: OfflinePolicy, *, flap_count: int = 0) -> str:
    seen = camera.last_seen_at.isoformat(timespec="seconds") if camera.last_seen_at else "never"
    if flap_count:
        return f"Camera {camera.name!r} is flapping: dropped {flap_count} time(s) while recovering (last seen {seen})."
    silence = int(policy.offline_after.total_seconds())
    return f"Camera {camera.name!r} not heard from for over {silence} s (last seen {seen})."


def _details(camera: Camera, policy: OfflinePolicy, *, flap_count: int) -> dict:
    # `recovering_since` is present only while recovering, so "is recovering" is a has-key test.
    return {
        "last_seen_at": camera.last_seen_at.isoformat() if camera.last_seen_at else None,
        "offline_after_seconds": int(policy.offline_after.total_seconds()),
        "flap_count": flap_count,
    }


def camera_offline_alerts_refresh(
    *, now: datetime | None = None, policy: OfflinePolicy | None = None, batch_size: int | None = None
) -> OfflineAlertsResult:
    """One bounded pass: open alerts for cameras that went down, track recovery and flapping of the
    ones already alerted, resolve the ones back for long enough or no longer watched."""
    now = now or timezone.now()
    policy = policy or OfflinePolicy.from_settings()
    batch_size = batch_size or settings.CAMERA_ALERTS_BATCH_SIZE
    result = OfflineAlertsResult()
    down_before = now - policy.offline_after
    up_since = now - policy.online_within

    # 1. Watched cameras that are down and have no active offline alert: open one.
    already_alerted = _active_offline_alerts().filter(camera_id=OuterRef("pk"))
    newly_down = (
        Camera.objects.filter(_watched())
        .annotate(heard_at=Coalesce("last_seen_at", "created_at"))
        .filter(heard_at__lt=down_before)
        .filter(~Exists(already_alerted))
        .order_by("pk")[: batch_size + 1]
    )
    cameras = list(newly_down)
    result.more |= len(cameras) > batch_size
    for camera in cameras[:batch_size]:
        alert_raise(
            kind=AlertKind.CAMERA_OFFLINE,
            camera=camera,
            message=_describe(camera, policy),
            details=_details(camera, policy, flap_count=0),
            now=now,
        )
        result.raised += 1

    # 2. Alerted cameras that are up, or were recovering: recovery starts, completes, or is cut short.
    actionable = (
        _active_offline_alerts()
        .filter(camera__is_active=True)
        .exclude(camera__status=CameraStatus.MAINTENANCE)
        .filter(Q(camera__last_seen_at__gte=up_since) | Q(details__has_key="recovering_since"))
        .select_related("camera")
        .order_by("pk")[: batch_size + 1]
    )
    alerts = list(actionable)
    result.more |= len(alerts) > batch_size
    for alert in alerts[:batch_size]:
        alerted_camera = alert.camera
        assert alerted_camera is not None
        details = dict(alert.details)
        recovering_since = details.get("recovering_since")
        last_seen_at = alerted_camera.last_seen_at
        is_up = last_seen_at is not None and last_seen_at >= up_since
        if is_up and recovering_since is None:
            details["recovering_since"] = now.isoformat()
            details["last_seen_at"] = last_seen_at.isoformat() if last_seen_at else None
            Alert.objects.filter(pk=alert.pk).update(details=details, updated_at=now)
            result.recovering += 1
        elif is_up and now - datetime.fromisoformat(str(recovering_since)) >= policy.recovery:
            Alert.objects.filter(pk=alert.pk, state__in=ACTIVE_ALERT_STATES).update(
                state=AlertState.RESOLVED, resolved_at=now, resolved_by=SYSTEM, updated_at=now
            )
            alerts_published(change="resolved", alert_ids=[alert.pk])  # live events (docs/live.md)
            alerts_changed(change="resolved", alert_ids=[alert.pk], now=now)  # notifications
            result.resolved += 1
        elif not is_up and recovering_since is not None:
            flap_count = int(details.get("flap_count", 0)) + 1
            alert_raise(
                kind=AlertKind.CAMERA_OFFLINE,
                camera=alerted_camera,
                message=_describe(alerted_camera, policy, flap_count=flap_count),
                severity=AlertSeverity.CRITICAL if flap_count >= 3 else alert.severity,
                details=_details(alerted_camera, policy, flap_count=flap_count),
                now=now,
            )
            result.flapped += 1

    # 3. Offline alerts of cameras no longer watched (deactivated, in maintenance): nothing to wait for.
    unwatched = _active_offline_alerts().filter(Q(camera__is_active=False) | Q(camera__status=CameraStatus.MAINTENANCE))
    ids = list(unwatched.order_by("pk").values_list("pk", flat=True)[: batch_size + 1])
    result.more |= len(ids) > batch_size
    result.resolved += Alert.objects.filter(pk__in=ids[:batch_size], state__in=ACTIVE_ALERT_STATES).update(
        state=AlertState.RESOLVED, resolved_at=now, resolved_by=SYSTEM, updated_at=now
    )
    alerts_published(change="resolved", alert_ids=ids[:batch_size])  # live events (docs/live.md)
    alerts_changed(change="resolved", alert_ids=ids[:batch_size], now=now)  # notifications
    return result
