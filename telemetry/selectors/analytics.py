"""Reads of the rollups for the analytics API and the admin dashboards. Never the raw partitions.

Every read names a scope (one camera, one zone, or the fleet) and a bucket range, served by the unique
(scope, scope_id, bucket) index, or reads every camera or zone over a bounded range through the (scope,
bucket) index. All of them run inside `replica_reads()`, so they go to the read replica when one is
configured (its_camera.db.routers).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, FloatField, Max, Q, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from cameras.choices import ACTIVE_ALERT_STATES
from cameras.models import Alert, Camera, Zone
from its_camera.db.routers import replica_reads
from telemetry.models import (
    NIL_SCOPE_ID,
    DetectionDailyRollup,
    DetectionHourlyRollup,
    FrameDailyRollup,
    FrameHourlyRollup,
    FrameMinuteRollup,
    RollupScope,
    RollupWatermark,
)

__all__ = [
    "AnalyticsScope",
    "analytics_detections",
    "analytics_frames",
    "dashboard_detections_by_class",
    "dashboard_ingest_series",
    "dashboard_open_alerts",
    "dashboard_slowest_cameras",
    "ingest_last_hour",
    "rollup_lag",
    "rollup_watermark",
]


@dataclass(frozen=True)
class AnalyticsScope:
    scope: str
    scope_id: uuid.UUID

    @classmethod
    def fleet(cls) -> "AnalyticsScope":
        return cls(RollupScope.FLEET, NIL_SCOPE_ID)

    @classmethod
    def camera(cls, camera_id: uuid.UUID) -> "AnalyticsScope":
        return cls(RollupScope.CAMERA, camera_id)

    @classmethod
    def zone(cls, zone_id: uuid.UUID) -> "AnalyticsScope":
        return cls(RollupScope.ZONE, zone_id)


def rollup_watermark() -> RollupWatermark | None:
    from telemetry.services.rollups import WATERMARK_NAME  # the name lives with the service that writes it

    return RollupWatermark.objects.filter(name=WATERMARK_NAME).first()


def rollup_lag(*, now: datetime | None = None) -> timedelta | None:
    """How far the rollups are behind `now` (None before their first run)."""
    row = rollup_watermark()
    if row is None:
        return None
    return max(timedelta(0), (now or timezone.now()) - row.watermark)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def _frame_values(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "frames": row["frames"] or 0,
        "failed_frames": row["failed_frames"] or 0,
        "failure_rate": _ratio(row["failed_frames"], row["frames"]),
        "mean_processing_time_ms": _ratio(row["processing_time_sum"], row["processing_time_count"]),
        "max_processing_time_ms": row["processing_time_max"],
        "detections": row["detections"] or 0,
    }


_FRAME_SUMS = {
    "frames": Sum("frames"),
    "failed_frames": Sum("failed_frames"),
    "processing_time_count": Sum("processing_time_count"),
    "processing_time_sum": Sum("processing_time_sum"),
    "processing_time_max": Max("processing_time_max"),
    "detections": Sum("detections"),
}


def _window_p95(rows: list[dict[str, Any]], *, daily: bool) -> tuple[float | None, bool]:
    """A window's p95 from its buckets and whether it is exact: an hour bucket's stored p95 when one hour
    holds every timed frame (percentile_cont over its raw rows), otherwise estimated from the merged
    histograms (within 1 %). Day buckets' p95 are estimates themselves."""
    from telemetry.services.rollups import histogram_p95

    timed = [row for row in rows if row["processing_time_count"]]
    if len(timed) == 1 and not daily:
        return timed[0]["processing_time_p95"], True
    return histogram_p95((row["histogram_bins"], row["histogram_counts"]) for row in timed), not timed


@replica_reads()
def analytics_frames(*, scope: AnalyticsScope, since: datetime, until: datetime, daily: bool) -> dict[str, Any]:
    """Frames, failures, mean/p95/max processing time and detections per hour (or day) for buckets starting
    in [since, until), their totals, and — for the fleet — totals per zone."""
    model: Any = FrameDailyRollup if daily else FrameHourlyRollup
    rows = list(
        model.objects.filter(scope=scope.scope, scope_id=scope.scope_id, bucket__gte=since, bucket__lt=until)
        .order_by("bucket")
        .values(
            "bucket",
            "frames",
            "failed_frames",
            "processing_time_count",
            "processing_time_sum",
            "processing_time_p95",
            "processing_time_max",
            "detections",
            "histogram_bins",
            "histogram_counts",
        )
    )
    buckets = [
        {
            "bucket": row["bucket"],
            **_frame_values(row),
            "p95_processing_time_ms": row["processing_time_p95"],
            "p95_exact": not daily or not row["processing_time_count"],
        }
        for row in rows
    ]
    sums = {key: sum(row[key] for row in rows) for key in ("frames", "failed_frames", "detections")}
    sums["processing_time_count"] = sum(row["processing_time_count"] for row in rows)
    sums["processing_time_sum"] = sum(row["processing_time_sum"] for row in rows)
    maxima = [row["processing_time_max"] for row in rows if row["processing_time_max"] is not None]
    sums["processing_time_max"] = max(maxima) if maxima else None
    p95, exact = _window_p95(rows, daily=daily)
    totals = {**_frame_values(sums), "p95_processing_time_ms": p95, "p95_exact": exact}
    zones = []
    if scope.scope == RollupScope.FLEET:
        zone_rows = (
            model.objects.filter(scope=RollupScope.ZONE, bucket__gte=since, bucket__lt=until)
            .values("scope_id")
            .annotate(**_FRAME_SUMS)
            .order_by("scope_id")
        )
        names = dict(Zone.objects.values_list("id", "name"))
        zones = [
            {"zone_id": row["scope_id"] if row["scope_id"] != NIL_SCOPE_ID else None,
             "zone_name": names.get(row["scope_id"], "(no zone)" if row["scope_id"] == NIL_SCOPE_ID else "(deleted)"),
             **_frame_values(row)}
            for row in zone_rows
        ]  # fmt: skip
    return {"buckets": buckets, "totals": totals, "zones": zones}


@replica_reads()
def analytics_detections(
    *, scope: AnalyticsScope, since: datetime, until: datetime, daily: bool, object_types: list[str] | None = None
) -> dict[str, Any]:
    """Detections per hour (or day) and object type for buckets starting in [since, until), totals per
    object type, and — for the fleet — totals per zone and object type."""
    model: Any = DetectionDailyRollup if daily else DetectionHourlyRollup
    in_range = Q(bucket__gte=since, bucket__lt=until)
    if object_types:
        in_range &= Q(object_type__in=object_types)
    selected = model.objects.filter(in_range, scope=scope.scope, scope_id=scope.scope_id)
    mean_confidence = Cast(F("confidence_sum"), FloatField()) / F("detections")
    buckets = list(
        selected.order_by("bucket", "object_type").values("bucket", "object_type", "detections")
        .annotate(mean_confidence=mean_confidence)
    )  # fmt: skip
    by_type = (
        selected.values("object_type")
        .annotate(total=Sum("detections"), confidence=Sum("confidence_sum"))
        .order_by("-total", "object_type")
    )
    totals = [
        {"object_type": row["object_type"], "detections": row["total"], "mean_confidence": row["confidence"] / total}
        for row in by_type
        if (total := row["total"])
    ]
    zones = []
    if scope.scope == RollupScope.FLEET:
        names = dict(Zone.objects.values_list("id", "name"))
        zone_rows = (
            model.objects.filter(in_range, scope=RollupScope.ZONE)
            .values("scope_id", "object_type")
            .annotate(total=Sum("detections"))
            .order_by("scope_id", "-total", "object_type")
        )
        zones = [
            {"zone_id": row["scope_id"] if row["scope_id"] != NIL_SCOPE_ID else None,
             "zone_name": names.get(row["scope_id"], "(no zone)" if row["scope_id"] == NIL_SCOPE_ID else "(deleted)"),
             "object_type": row["object_type"], "detections": row["total"]}
            for row in zone_rows
        ]  # fmt: skip
    return {"buckets": buckets, "totals": totals, "zones": zones}


# --- Admin dashboards: each is one bounded query through an index of a rollup table ----------------------


@replica_reads()
def dashboard_ingest_series(*, now: datetime, hours: int = 24) -> list[dict[str, Any]]:
    """The fleet's frames, failed frames and failure rate per hour for the last `hours` hours (fleet rows of
    the hour table: `hours` + 1 rows by the unique index)."""
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = FrameHourlyRollup.objects.filter(scope=RollupScope.FLEET, scope_id=NIL_SCOPE_ID, bucket__gte=since)
    by_bucket: dict[datetime, dict[str, Any]] = {
        row["bucket"]: dict(row) for row in rows.values("bucket", "frames", "failed_frames", "processing_time_p95")
    }
    series = []
    for index in range(hours):
        bucket = since + timedelta(hours=index)
        row: dict[str, Any] = by_bucket.get(bucket) or {"frames": 0, "failed_frames": 0, "processing_time_p95": None}
        series.append(
            {
                "bucket": bucket,
                "frames": row["frames"],
                "frames_per_second": row["frames"] / 3600,
                "failed_frames": row["failed_frames"],
                "failure_rate": _ratio(row["failed_frames"], row["frames"]),
                "p95_processing_time_ms": row["processing_time_p95"],
            }
        )
    return series


@replica_reads()
def dashboard_recent_minutes(*, now: datetime, minutes: int = 60) -> list[dict[str, Any]]:
    """The fleet's frames per minute for the last `minutes` minutes (fleet rows of the minute table)."""
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    rows = FrameMinuteRollup.objects.filter(scope=RollupScope.FLEET, scope_id=NIL_SCOPE_ID, bucket__gte=since)
    by_bucket = dict(rows.values_list("bucket", "frames"))
    return [
        {"bucket": since + timedelta(minutes=index), "frames": by_bucket.get(since + timedelta(minutes=index), 0)}
        for index in range(minutes)
    ]


@replica_reads()
def ingest_last_hour(*, now: datetime) -> dict[str, Any]:
    """The fleet's ingest over the 60 minutes before `now`'s minute (at most 60 fleet rows of the minute table):
    frames, failed frames, the mean frames/s over the hour and per minute (oldest first)."""
    until = now.replace(second=0, microsecond=0)
    since = until - timedelta(minutes=60)
    rows = FrameMinuteRollup.objects.filter(
        scope=RollupScope.FLEET, scope_id=NIL_SCOPE_ID, bucket__gte=since, bucket__lt=until
    ).values_list("bucket", "frames", "failed_frames")
    by_bucket = {bucket: (frames, failed) for bucket, frames, failed in rows}
    per_minute = [by_bucket.get(since + timedelta(minutes=index), (0, 0))[0] / 60 for index in range(60)]
    frames = sum(frames for frames, _ in by_bucket.values())
    failed = sum(failed for _, failed in by_bucket.values())
    return {
        "since": since,
        "until": until,
        "frames": frames,
        "failed_frames": failed,
        "failure_rate": _ratio(failed, frames),
        "frames_per_second": frames / 3600,
        "last_minute_frames_per_second": per_minute[-1],
        "per_minute_frames_per_second": per_minute,
    }


@replica_reads()
def dashboard_detections_by_class(*, now: datetime, hours: int = 24) -> list[dict[str, Any]]:
    """Detections per object type over the last `hours` hours (fleet rows of the detection hour table)."""
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = (
        DetectionHourlyRollup.objects.filter(scope=RollupScope.FLEET, scope_id=NIL_SCOPE_ID, bucket__gte=since)
        .values("object_type")
        .annotate(detections=Sum("detections"), confidence=Sum("confidence_sum"))
        .order_by("-detections", "object_type")
    )
    return [
        {
            "object_type": row["object_type"],
            "detections": row["detections"],
            "mean_confidence": row["confidence"] / row["detections"],
        }
        for row in rows
    ]


@replica_reads()
def dashboard_slowest_cameras(*, now: datetime, hours: int = 24, limit: int = 15) -> list[dict[str, Any]]:
    """The cameras with the highest mean processing time over the last `hours` hours, with their worst
    hourly p95 (camera rows of the hour table: hours x cameras rows through the (scope, bucket) index)."""
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = list(
        FrameHourlyRollup.objects.filter(scope=RollupScope.CAMERA, bucket__gte=since, processing_time_count__gt=0)
        .values("scope_id")
        .annotate(
            frames=Sum("frames"),
            failed_frames=Sum("failed_frames"),
            mean=Sum("processing_time_sum") / Sum("processing_time_count"),
            worst_p95=Max("processing_time_p95"),
        )
        .order_by("-mean")[:limit]
    )
    names = dict(Camera.objects.filter(id__in=[row["scope_id"] for row in rows]).values_list("id", "name"))
    return [
        {
            "camera_id": row["scope_id"],
            "camera_name": names.get(row["scope_id"], "(deleted)"),
            "frames": row["frames"],
            "failure_rate": _ratio(row["failed_frames"], row["frames"]),
            "mean_processing_time_ms": row["mean"],
            "worst_hourly_p95_ms": row["worst_p95"],
        }
        for row in rows
    ]


@replica_reads()
def dashboard_open_alerts(*, limit: int = 20) -> dict[str, Any]:
    """Active alerts counted by kind and severity, and the newest `limit` of them (idx_alerts_state_opened)."""
    active: QuerySet[Alert] = Alert.objects.filter(state__in=ACTIVE_ALERT_STATES)
    counts = list(active.values("kind", "severity").annotate(count=Count("id")).order_by("kind", "severity"))
    newest = list(active.select_related("camera").order_by("-opened_at")[:limit])
    return {"counts": counts, "newest": newest}
