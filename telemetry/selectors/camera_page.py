"""Everything the admin's page for one camera shows, in a fixed number of bounded queries (tests count them):

- per hour for the last 24 hours, from the camera's hourly rollups: frames/s, failure rate, p95 processing
  time, detections by class, and completeness (frames received against the fps its config promises);
- fps per hour from its `fps` system metrics (idx_system_metrics_camera_name: one camera, one name, 24 h);
- its alerts open now or opened in the window (newest 50), for the timeline;
- its latest frames in the window with their detections ((camera_id, timestamp) index, newest 20).

Raw telemetry tables are read only through indexes that start with the camera and a time range.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Max, Min, Q
from django.db.models.functions import TruncHour

from cameras.choices import ACTIVE_ALERT_STATES
from cameras.models import Alert, Camera
from its_camera.db.routers import replica_reads
from telemetry.models import DetectionHourlyRollup, FrameHourlyRollup, FrameMetadata, RollupScope, SystemMetric
from telemetry.selectors.timeline import frame_detections

__all__ = ["CameraPage", "camera_page", "promised_fps"]

HOURS = 24
MAX_ALERTS = 50
MAX_FRAMES = 20
MAX_DETECTIONS_SHOWN = 12
FPS_METRIC = "fps"
MAX_PROMISED_FPS = 1000.0


def promised_fps(config: dict[str, Any]) -> float | None:
    """The fps a camera's config promises (`fps`), if it is a sane number."""
    value = config.get("fps") if isinstance(config, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        fps = float(value)
    except ValueError:
        return None
    return fps if math.isfinite(fps) and 0 < fps <= MAX_PROMISED_FPS else None


@dataclass
class CameraPage:
    camera: Camera
    since: datetime
    until: datetime
    hours: list[dict[str, Any]]
    object_types: list[str]
    alerts: list[Alert]
    frames: list[dict[str, Any]]
    promised_fps: float | None
    totals: dict[str, Any]


def _detections(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    shown = []
    for item in raw[:MAX_DETECTIONS_SHOWN]:
        if isinstance(item, dict):
            shown.append(
                {
                    "object_type": str(item.get("object_type", "?"))[:32],
                    "confidence": item.get("confidence") if isinstance(item.get("confidence"), int | float) else None,
                    "track_id": item.get("track_id"),
                }
            )
    return shown


@replica_reads()
def camera_page(*, camera: Camera, now: datetime) -> CameraPage:
    """The camera page's data for the 24 hours up to `now` (the current hour included, partly filled)."""
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=HOURS)
    scope = {"scope": RollupScope.CAMERA, "scope_id": camera.pk, "bucket__gte": since, "bucket__lt": until}
    frame_rows = {
        row["bucket"]: row
        for row in FrameHourlyRollup.objects.filter(**scope).values(
            "bucket", "frames", "failed_frames", "processing_time_p95", "detections"
        )
    }
    detection_rows = list(DetectionHourlyRollup.objects.filter(**scope).values("bucket", "object_type", "detections"))
    fps_rows = {
        row["hour"]: row
        for row in SystemMetric.objects.filter(
            camera_id=camera.pk, name=FPS_METRIC, timestamp__gte=since, timestamp__lt=until
        )
        .annotate(hour=TruncHour("timestamp"))
        .values("hour")
        .annotate(mean=Avg("value"), low=Min("value"), high=Max("value"))
        .order_by()
    }
    alerts = list(
        Alert.objects.filter(camera=camera)
        .filter(Q(opened_at__gte=since) | Q(state__in=ACTIVE_ALERT_STATES) | Q(resolved_at__gte=since))
        .order_by("-opened_at")[:MAX_ALERTS]
    )
    latest = list(
        FrameMetadata.objects.filter(camera_id=camera.pk, timestamp__gte=since, timestamp__lte=now)
        .order_by("-timestamp")
        .values(
            "timestamp", "frame_number", "processing_status", "processing_time_ms", "detection_count",
            "vehicle_count", "person_count", "bicycle_count", "max_confidence",
        )[:MAX_FRAMES]
    )  # fmt: skip
    # A frame's detections are stored once, as detection rows (docs/storage.md): one query for the page.
    sent = frame_detections(camera_id=camera.pk, timestamps=[row["timestamp"] for row in latest])
    frames = [{**row, "detections": _detections(sent.get(row["timestamp"], []))} for row in latest]

    promised = promised_fps(camera.config)
    object_types = sorted({row["object_type"] for row in detection_rows})
    by_class: dict[tuple[datetime, str], int] = {
        (row["bucket"], row["object_type"]): row["detections"] for row in detection_rows
    }
    hours: list[dict[str, Any]] = []
    for index in range(HOURS):
        bucket = since + timedelta(hours=index)
        row = frame_rows.get(bucket)
        frames_in_hour = row["frames"] if row else 0
        failed = row["failed_frames"] if row else 0
        # The current hour is judged on the part of it that has passed.
        seconds = min(3600.0, max((now - bucket).total_seconds(), 0.0))
        expected = promised * seconds if promised and seconds else None
        fps = fps_rows.get(bucket)
        hours.append(
            {
                "bucket": bucket,
                "frames": frames_in_hour,
                "frames_per_second": frames_in_hour / seconds if seconds else 0.0,
                "failed_frames": failed,
                "failure_rate": failed / frames_in_hour if frames_in_hour else None,
                "p95_processing_time_ms": row["processing_time_p95"] if row else None,
                "detections": {object_type: by_class.get((bucket, object_type), 0) for object_type in object_types},
                "expected_frames": expected,
                "completeness": min(frames_in_hour / expected, 9.99) if expected else None,
                "completeness_percent": min(frames_in_hour / expected, 9.99) * 100 if expected else None,
                "fps_mean": fps["mean"] if fps else None,
                "fps_min": fps["low"] if fps else None,
                "fps_max": fps["high"] if fps else None,
            }
        )
    total_frames = sum(hour["frames"] for hour in hours)
    total_expected = sum(hour["expected_frames"] or 0 for hour in hours)
    total_failed = sum(hour["failed_frames"] for hour in hours)
    p95s = [hour["p95_processing_time_ms"] for hour in hours if hour["p95_processing_time_ms"] is not None]
    totals: dict[str, Any] = {
        "frames": total_frames,
        "failure_rate": total_failed / total_frames if total_frames else None,
        "worst_p95_ms": max(p95s) if p95s else None,
        "completeness": total_frames / total_expected if total_expected else None,
        "detections": sum(row["detections"] for row in detection_rows),
        "open_alerts": sum(1 for alert in alerts if alert.state in ACTIVE_ALERT_STATES),
    }
    totals["failure_percent"] = totals["failure_rate"] * 100 if totals["failure_rate"] is not None else None
    totals["completeness_percent"] = totals["completeness"] * 100 if totals["completeness"] is not None else None
    return CameraPage(
        camera=camera,
        since=since,
        until=until,
        hours=hours,
        object_types=object_types,
        alerts=alerts,
        frames=frames,
        promised_fps=promised,
        totals=totals,
    )
