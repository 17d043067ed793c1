"""Analytics endpoints, served from the rollups (telemetry/selectors/analytics.py), never from raw partitions.

A response is a bounded series (the range limit caps the number of buckets), so it is not paginated.
Buckets are included when they *start* in [since, until). `complete_until` is the rollup watermark: buckets
after it may still grow (docs/analytics.md).
"""

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from cameras.models import Camera, Zone
from its_camera import limits
from its_camera.api.auth import ApiKeyAuth
from its_camera.choices import ApiScope
from telemetry.rollup_conf import rollup_setting
from telemetry.selectors.analytics import AnalyticsScope, analytics_detections, analytics_frames, rollup_watermark

router = Router(tags=["analytics"], auth=ApiKeyAuth(ApiScope.TELEMETRY_READ))


class AnalyticsFilters(Schema):
    since: datetime | None = Field(None, description="Buckets starting at or after this (with a time zone).")
    until: datetime | None = Field(None, description="Buckets starting before this (with a time zone); default now.")
    camera_id: uuid.UUID | None = Field(None, description="One camera.")
    zone_id: uuid.UUID | None = Field(None, description="One zone: its cameras taken together.")


class DetectionFilters(AnalyticsFilters):
    object_type: list[str] | None = Field(None, description="Repeatable: only these object types.")
    granularity: Literal["hour", "day"] = "hour"


class FrameTotalsBase(Schema):
    frames: int
    failed_frames: int
    failure_rate: float | None
    mean_processing_time_ms: float | None
    max_processing_time_ms: float | None
    detections: int = Field(description="Sum of the frames' detection_count.")


P95_EXACT_DESCRIPTION = (
    "True: percentile_cont(0.95) over the raw rows. False: estimated from merged processing-time histograms, "
    "within 1 % of percentile_cont (a bound of the histogram's 2 % bins, whatever the number of frames)."
)


class FrameBucketOut(FrameTotalsBase):
    bucket: datetime
    p95_processing_time_ms: float | None
    p95_exact: bool = Field(description=P95_EXACT_DESCRIPTION)


class FrameTotalsOut(FrameTotalsBase):
    p95_processing_time_ms: float | None
    p95_exact: bool = Field(description=P95_EXACT_DESCRIPTION)


class ZoneFramesOut(FrameTotalsBase):
    zone_id: uuid.UUID | None = Field(description="None: cameras without a zone.")
    zone_name: str


class FrameAnalyticsOut(Schema):
    since: datetime
    until: datetime
    scope: str
    scope_id: uuid.UUID | None
    complete_until: datetime | None
    buckets: list[FrameBucketOut]
    totals: FrameTotalsOut
    zones: list[ZoneFramesOut] = Field(description="Totals per zone over the range (fleet scope only).")


class DetectionBucketOut(Schema):
    bucket: datetime
    object_type: str
    detections: int
    mean_confidence: float


class DetectionTotalOut(Schema):
    object_type: str
    detections: int
    mean_confidence: float


class ZoneDetectionsOut(Schema):
    zone_id: uuid.UUID | None
    zone_name: str
    object_type: str
    detections: int


class DetectionAnalyticsOut(Schema):
    since: datetime
    until: datetime
    granularity: str
    scope: str
    scope_id: uuid.UUID | None
    complete_until: datetime | None
    buckets: list[DetectionBucketOut]
    totals: list[DetectionTotalOut]
    zones: list[ZoneDetectionsOut] = Field(description="Totals per zone and object type (fleet scope only).")


def _window(filters: AnalyticsFilters, *, default: timedelta, max_days: int) -> tuple[datetime, datetime]:
    for name, moment in (("since", filters.since), ("until", filters.until)):
        if moment is not None and timezone.is_naive(moment):
            raise HttpError(422, "since and until must carry a time zone (e.g. 2026-11-25T10:00:00Z).")
        if (problem := limits.read_timestamp_check(moment, name=name)) is not None:
            raise HttpError(422, problem)
    until = filters.until or timezone.now()
    since = filters.since or until - default
    if since >= until:
        raise HttpError(422, "since must be before until.")
    if until - since > timedelta(days=max_days):
        raise HttpError(422, f"The range is longer than {max_days} days: narrow since/until.")
    return since, until


def _scope(filters: AnalyticsFilters) -> AnalyticsScope:
    if filters.camera_id and filters.zone_id:
        raise HttpError(422, "Give camera_id or zone_id, not both.")
    if filters.camera_id:
        if not Camera.objects.filter(id=filters.camera_id).exists():
            raise HttpError(422, f"camera_id: unknown camera {filters.camera_id}.")
        return AnalyticsScope.camera(filters.camera_id)
    if filters.zone_id:
        if not Zone.objects.filter(id=filters.zone_id).exists():
            raise HttpError(422, f"zone_id: unknown zone {filters.zone_id}.")
        return AnalyticsScope.zone(filters.zone_id)
    return AnalyticsScope.fleet()


def _envelope(scope: AnalyticsScope, since: datetime, until: datetime) -> dict[str, Any]:
    watermark = rollup_watermark()
    return {
        "since": since,
        "until": until,
        "scope": scope.scope,
        "scope_id": None if scope == AnalyticsScope.fleet() else scope.scope_id,
        "complete_until": watermark.watermark if watermark else None,
    }


@router.get(
    "/analytics/hourly",
    response=FrameAnalyticsOut,
    summary="Frames, failures, processing time and detections per hour",
    description=(
        "For one camera (`camera_id`), one zone (`zone_id`) or the whole fleet: per hour, frames, failed frames, "
        "mean, p95 (exact: percentile_cont over the hour's frames) and max processing time, detections; totals "
        "over the range; for the fleet, totals per zone. Default range: the last 24 hours; at most "
        "`ANALYTICS_HOURLY_MAX_DAYS` (31 by default) days."
    ),
)
def analytics_hourly(request: HttpRequest, filters: Query[AnalyticsFilters]) -> dict[str, Any]:
    since, until = _window(filters, default=timedelta(hours=24), max_days=rollup_setting("ANALYTICS_HOURLY_MAX_DAYS"))
    scope = _scope(filters)
    return {**_envelope(scope, since, until), **analytics_frames(scope=scope, since=since, until=until, daily=False)}


@router.get(
    "/analytics/daily",
    response=FrameAnalyticsOut,
    summary="Frames, failures, processing time and detections per day (UTC)",
    description=(
        "As `/analytics/hourly`, per UTC day. A day's p95 is estimated by merging its hours' processing-time "
        "histograms (`p95_exact: false`, within 1 % of percentile_cont over the day). Default range: the "
        "last 7 days; at most `ANALYTICS_DAILY_MAX_DAYS` (366 by default) days."
    ),
)
def analytics_daily(request: HttpRequest, filters: Query[AnalyticsFilters]) -> dict[str, Any]:
    since, until = _window(filters, default=timedelta(days=7), max_days=rollup_setting("ANALYTICS_DAILY_MAX_DAYS"))
    scope = _scope(filters)
    return {**_envelope(scope, since, until), **analytics_frames(scope=scope, since=since, until=until, daily=True)}


@router.get(
    "/analytics/detections",
    response=DetectionAnalyticsOut,
    summary="Detections per object type, per hour or day",
    description=(
        "For one camera, one zone or the fleet: detections and mean confidence per bucket and object type "
        "(`object_type` repeatable to filter), totals per object type, and for the fleet totals per zone. "
        "Hourly ranges up to `ANALYTICS_HOURLY_MAX_DAYS` days, daily up to `ANALYTICS_DAILY_MAX_DAYS`."
    ),
)
def analytics_detections_view(request: HttpRequest, filters: Query[DetectionFilters]) -> dict[str, Any]:
    daily = filters.granularity == "day"
    since, until = _window(
        filters,
        default=timedelta(days=7) if daily else timedelta(hours=24),
        max_days=rollup_setting("ANALYTICS_DAILY_MAX_DAYS") if daily else rollup_setting("ANALYTICS_HOURLY_MAX_DAYS"),
    )
    scope = _scope(filters)
    object_types = [value.strip() for value in filters.object_type or [] if value.strip()]
    result = analytics_detections(scope=scope, since=since, until=until, daily=daily, object_types=object_types)
    return {**_envelope(scope, since, until), "granularity": filters.granularity, **result}
