"""Live events of the camera registry: camera status changes and alert changes (docs/live.md).

Where events come from:
- `camera_heartbeat_published`: called by the heartbeat service. A camera that was stale and sends a
  heartbeat becomes `streaming` at once; steady heartbeats publish nothing (one Redis HGET each).
- `camera_status_sweep` (the beat task `cameras.publish_live_status`, every 10 s): connection status
  changes by the passing of time (streaming -> recent -> stale) with no write to notice, and changes
  made without a heartbeat (operator edits, bulk actions, deactivation, a zone move). It compares the
  `realtime_camera_status` view with the last published state kept in a Redis hash and publishes the
  differences only, so running it twice publishes nothing new.
- `alerts_published`: called by the alert services when an alert opens, is acknowledged or resolved.

The last published state per camera is a compare-and-set in the same Redis script that publishes, so a
heartbeat and the sweep racing each other never both publish the same transition. Until the sweep has
recorded a first full picture (the baseline marker), cameras publish nothing: a fresh Redis would
otherwise replay the whole fleet as "new" events; subscribers get one `fleet.reset` instead.
"""

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import Metric

from cameras.choices import ACTIVE_ALERT_STATES, AlertState
from cameras.models import Alert, Camera, RealtimeCameraStatus
from cameras.selectors.cameras import connection_status_at
from its_camera import events, metrics
from its_camera.events import KEY_PREFIX, LiveEventsUnavailable, StateChange
from its_camera.jobs import JobResult, beat_job

logger = logging.getLogger(__name__)

CAMERA_STATUS = "camera.status"
CAMERA_REMOVED = "camera.removed"
ALERT_RAISED = "alert.raised"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_RESOLVED = "alert.resolved"
FLEET_RESET = "fleet.reset"
EVENT_TYPES = (CAMERA_STATUS, CAMERA_REMOVED, ALERT_RAISED, ALERT_ACKNOWLEDGED, ALERT_RESOLVED, FLEET_RESET)
ALERT_CHANGES = {"raised": ALERT_RAISED, "acknowledged": ALERT_ACKNOWLEDGED, "resolved": ALERT_RESOLVED}
STATE_AFTER = {"raised": AlertState.OPEN, "acknowledged": AlertState.ACKNOWLEDGED, "resolved": AlertState.RESOLVED}

STATE_KEY = KEY_PREFIX + "camera-state"  # hash: camera id -> last published CameraState (JSON)
BASELINE_FIELD = "~baseline"  # in STATE_KEY once the sweep recorded every camera once
SWEEP_KEY = KEY_PREFIX + "camera-sweep"  # hash: where the bounded sweep continues (cursor, hscan)
PUBLISH_LIVE_STATUS = "cameras.publish_live_status"
# Shared by every beat job (the same name returns the same counter, whichever app creates it first).


@dataclass(frozen=True)
class CameraState:
    """What subscribers were last told about a camera."""

    status: str
    connection_status: str
    zone_id: str | None
    name: str

    def as_dict(self) -> dict[str, str | None]:
        # Keys in sorted order and no dataclasses.asdict (a deep copy): the sweep encodes every camera.
        return {
            "connection_status": self.connection_status,
            "name": self.name,
            "status": self.status,
            "zone_id": self.zone_id,
        }

    def encode(self) -> str:
        return orjson.dumps(self.as_dict()).decode()

    @classmethod
    def decode(cls, raw: Any) -> "CameraState | None":
        if not raw:
            return None
        try:
            return cls(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None  # written by an older version: treated as unknown, republished


def _camera_event(
    camera_id: str, previous: CameraState | None, current: CameraState | None, last_seen_at: datetime | None
) -> dict[str, Any]:
    shown = current or previous
    assert shown is not None
    return {
        "camera_id": camera_id,
        "name": shown.name,
        "zone_id": shown.zone_id,
        "status": current.status if current else None,
        "connection_status": current.connection_status if current else None,
        "last_seen_at": last_seen_at.isoformat() if last_seen_at else None,
        "previous": None if previous is None else previous.as_dict(),
        "at": timezone.now().isoformat(),
    }


def as_text(value: Any) -> str:
    """Redis answers bytes; "" for a missing value."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _state_change(field: str, new: CameraState | None, expected: Any) -> StateChange:
    return StateChange(
        key=STATE_KEY, field=field, new=new.encode() if new else "", expected=as_text(expected), require=BASELINE_FIELD
    )


# --- Heartbeats ------------------------------------------------------------------------------------


def camera_heartbeat_published(*, camera_id: uuid.UUID, status: str, seen_at: datetime) -> None:
    """Hook for the heartbeat service: publish the camera's new status once the heartbeat commits,
    if it changed what subscribers know. Never raises; costs one Redis round trip when nothing changed."""
    transaction.on_commit(partial(_heartbeat_publish, camera_id=camera_id, status=status, seen_at=seen_at), robust=True)


def _heartbeat_publish(*, camera_id: uuid.UUID, status: str, seen_at: datetime) -> int | None:
    if events.publishing_paused():
        return None
    field = str(camera_id)
    try:
        raw = events.redis_client().hget(STATE_KEY, field)
    except redis.RedisError as exc:
        events.publishing_failed(CAMERA_STATUS, exc)
        return None
    connection_status = connection_status_at(seen_at, now=timezone.now()).value
    previous = CameraState.decode(raw)
    if previous is not None:
        if previous.status == status and previous.connection_status == connection_status:
            return None
        current = replace(previous, status=status, connection_status=connection_status)
    else:
        row = Camera.objects.filter(pk=camera_id, is_active=True).values_list("name", "zone_id").first()
        if row is None:
            return None  # inactive cameras are not in the live picture
        name, zone_id = row
        current = CameraState(status, connection_status, str(zone_id) if zone_id else None, name)
    return events.event_publish(
        type=CAMERA_STATUS,
        data=_camera_event(field, previous, current, seen_at),
        state=_state_change(field, current, raw),
    )


# --- Alerts ----------------------------------------------------------------------------------------


def alerts_published(*, change: str, alert_ids: Iterable[int] = (), where: Q | None = None) -> None:
    """Hook for the alert services: after commit, publish `alert.<change>` for the alerts given by id
    or by `where` (at most LIVE_EVENTS_ALERTS_PER_CHANGE of them). Never raises."""
    ids = list(alert_ids)
    if not ids and where is None:
        return
    transaction.on_commit(partial(_alerts_publish, change=change, alert_ids=ids, where=where), robust=True)


def alert_event(alert: dict[str, Any], *, change: str) -> dict[str, Any]:
    return {
        "alert_id": alert["id"],
        "camera_id": str(alert["camera_id"]) if alert["camera_id"] else None,
        "zone_id": str(alert["camera__zone_id"]) if alert["camera__zone_id"] else None,
        "kind": alert["kind"],
        "subject": alert["subject"],
        "severity": alert["severity"],
        "state": str(STATE_AFTER[change]),  # the state this change made, whatever happened since
        "message": alert["message"][:500],
        "opened_at": alert["opened_at"].isoformat(),
        "at": timezone.now().isoformat(),
    }


def _alerts_publish(*, change: str, alert_ids: list[int], where: Q | None) -> None:
    if events.publishing_paused():
        return
    alerts = Alert.objects.filter(pk__in=alert_ids) if alert_ids else Alert.objects.filter(where or Q())
    rows = alerts.order_by("pk").values(
        "id", "camera_id", "camera__zone_id", "kind", "subject", "severity", "state", "message", "opened_at"
    )[: settings.LIVE_EVENTS_ALERTS_PER_CHANGE]
    try:
        events.event_publish_many([(ALERT_CHANGES[change], alert_event(row, change=change), None) for row in rows])
    except LiveEventsUnavailable as exc:
        events.publishing_failed(ALERT_CHANGES[change], exc)


# --- The sweep (beat task) -----------------------------------------------------------------------


@dataclass
class SweepResult:
    cameras: int = 0
    published: int = 0
    removed: int = 0
    baseline: bool = False  # this run recorded the first full picture (published fleet.reset)
    more: bool = False  # the run hit its bound; the next run continues where it stopped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view_batches(after: str, batch_size: int, max_batches: int) -> Iterator[list[tuple]]:
    cursor = uuid.UUID(after) if after else None
    for _ in range(max_batches):
        rows = RealtimeCameraStatus.objects.order_by("id")
        if cursor is not None:
            rows = rows.filter(id__gt=cursor)
        batch = list(
            rows.values_list("id", "name", "status", "zone_id", "connection_status", "last_seen_at")[:batch_size]
        )
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        cursor = batch[-1][0]


def camera_status_sweep(*, batch_size: int | None = None, max_batches: int | None = None) -> SweepResult:
    """Publish every difference between the realtime view and what subscribers were last told: at most
    `max_batches` batches of `batch_size` cameras per run (continuing from a cursor), plus one batch of
    removal checks (cameras deactivated or deleted). Raises LiveEventsUnavailable when Redis is down."""
    batch_size = batch_size or settings.LIVE_STATUS_SWEEP_BATCH_SIZE
    max_batches = max_batches or settings.LIVE_STATUS_SWEEP_MAX_BATCHES
    client = events.redis_client()
    result = SweepResult()
    try:
        cursor, hscan_cursor = client.hmget(SWEEP_KEY, ["cursor", "hscan"])
        baseline_done = bool(client.hexists(STATE_KEY, BASELINE_FIELD))
    except redis.RedisError as exc:
        raise LiveEventsUnavailable(str(exc)) from exc
    after = as_text(cursor)
    last_id = after
    for batch in _view_batches(after, batch_size, max_batches):
        result.cameras += len(batch)
        last_id = str(batch[-1][0])
        result.published += _sweep_batch(client, batch, baseline_done=baseline_done)
    finished_pass = result.cameras < batch_size * max_batches
    result.more = not finished_pass
    try:
        client.hset(SWEEP_KEY, "cursor", "" if finished_pass else last_id)
        if not baseline_done and finished_pass:
            client.hset(STATE_KEY, BASELINE_FIELD, timezone.now().isoformat())
            events.event_publish_many([(FLEET_RESET, {"reason": "baseline", "at": timezone.now().isoformat()}, None)])
            result.baseline = True
        elif baseline_done:
            result.removed = _sweep_removed(client, int(hscan_cursor or 0), batch_size)
    except redis.RedisError as exc:
        raise LiveEventsUnavailable(str(exc)) from exc
    return result


def _sweep_batch(client: redis.Redis, batch: list[tuple], *, baseline_done: bool) -> int:
    fields = [str(row[0]) for row in batch]
    try:
        stored = client.hmget(STATE_KEY, fields)
    except redis.RedisError as exc:
        raise LiveEventsUnavailable(str(exc)) from exc
    items: list[tuple[str, dict[str, Any], StateChange | None]] = []
    silent: dict[str, str] = {}
    for (_camera_id, name, status, zone_id, connection_status, last_seen_at), field, raw in zip(
        batch, fields, stored, strict=True
    ):
        current = CameraState(status, connection_status, str(zone_id) if zone_id else None, name)
        encoded = current.encode()
        if raw is not None and raw == encoded.encode():
            continue
        if not baseline_done:
            silent[field] = encoded
            continue
        previous = CameraState.decode(raw)
        items.append(
            (CAMERA_STATUS, _camera_event(field, previous, current, last_seen_at), _state_change(field, current, raw))
        )
    if silent:
        try:
            with client.pipeline(transaction=False) as pipe:
                for field, encoded in silent.items():
                    pipe.hsetnx(STATE_KEY, field, encoded)
                pipe.execute()
        except redis.RedisError as exc:
            raise LiveEventsUnavailable(str(exc)) from exc
    return sum(1 for event_id in events.event_publish_many(items) if event_id is not None)


def _sweep_removed(client: redis.Redis, hscan_cursor: int, batch_size: int) -> int:
    """Cameras in the published state that are no longer active: publish camera.removed and forget them."""
    next_cursor, stored = client.hscan(STATE_KEY, hscan_cursor, count=batch_size)
    client.hset(SWEEP_KEY, "hscan", next_cursor)
    assert isinstance(stored, dict)
    known = {as_text(field): raw for field, raw in stored.items() if as_text(field) != BASELINE_FIELD}
    if not known:
        return 0
    valid_ids = []
    for field in known:
        try:
            valid_ids.append(uuid.UUID(field))
        except ValueError:
            continue
    active = {str(pk) for pk in Camera.objects.filter(pk__in=valid_ids, is_active=True).values_list("pk", flat=True)}
    items: list[tuple[str, dict[str, Any], StateChange | None]] = []
    for field, raw in known.items():
        if field in active:
            continue
        previous = CameraState.decode(raw)
        if previous is None:
            client.hdel(STATE_KEY, field)
            continue
        items.append((CAMERA_REMOVED, _camera_event(field, previous, None, None), _state_change(field, None, raw)))
    return sum(1 for event_id in events.event_publish_many(items) if event_id is not None)


@beat_job(
    name=PUBLISH_LIVE_STATUS, every=timedelta(seconds=10), severity="warning", expected_errors=(LiveEventsUnavailable,)
)
def publish_live_status(*, now: datetime) -> JobResult:
    """Beat job (every 10 s, migration 0005): bounded and idempotent. With Redis unavailable the run fails
    (a warning `job_failed` alert, resolved by the next good run) without a traceback every 10 seconds."""
    result = camera_status_sweep()
    return JobResult(rows=result.published + result.removed, summary=result.as_dict())


# --- Metrics read at scrape time ---------------------------------------------------------------------


@metrics.register_collector("cameras")
def fleet_metrics() -> Iterator[Metric]:
    """Active cameras by connection and camera status, and active alerts: two GROUP BY queries over the
    cameras table (a few thousand rows) and the alerts state index."""
    cameras = metrics.gauge_family(
        "its_cameras", "Active cameras by connection status and camera status.", ["connection_status", "status"]
    )
    rows = RealtimeCameraStatus.objects.order_by().values_list("connection_status", "status").annotate(n=Count("id"))
    for connection_status, status, count in rows:
        cameras.add_metric([connection_status, status], count)
    yield cameras
    alerts = metrics.gauge_family("its_alerts_active", "Open and acknowledged alerts.", ["kind", "severity", "state"])
    open_alerts = (
        Alert.objects.filter(state__in=ACTIVE_ALERT_STATES)
        .order_by()
        .values_list("kind", "severity", "state")
        .annotate(n=Count("id"))
    )
    for kind, severity, state, count in open_alerts:
        alerts.add_metric([kind, severity, state], count)
    yield alerts
    newest = metrics.gauge_family("its_live_last_event_id", "Id of the newest live event (a counter in Redis).")
    try:
        newest.add_metric([], events.last_event_id())
    except LiveEventsUnavailable:
        return
    yield newest
