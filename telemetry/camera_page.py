"""The admin's page for one camera (`/admin/operations/cameras/<id>/`, linked from the camera list, the camera's
change form and the map): 24 hours of charts from the rollups, data completeness, an alert timeline and the
latest frames with their detections. The data comes from telemetry.selectors.camera_page (bounded queries);
charts are drawn by the vendored Chart.js, the timeline is plain SVG."""

import uuid
from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from cameras.models import Camera
from its_camera import admin_pages
from telemetry.selectors.camera_page import CameraPage, camera_page

TIMELINE_WIDTH = 1000
TIMELINE_ROW = 14
SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


def page_now() -> datetime:
    """The page's clock (tests pin it)."""
    return timezone.now()


def alert_timeline(page: CameraPage, *, now: datetime) -> list[dict[str, Any]]:
    """One bar per alert across the 24-hour window: from when it opened (or the window's start) to when it
    resolved (or now), in SVG units of a TIMELINE_WIDTH-wide box."""
    span = (page.until - page.since).total_seconds()

    def x(moment: datetime) -> float:
        seconds = (min(max(moment, page.since), page.until) - page.since).total_seconds()
        return round(seconds / span * TIMELINE_WIDTH, 1)

    bars = []
    for row, alert in enumerate(page.alerts):
        start = x(alert.opened_at)
        end = x(alert.resolved_at or now)
        bars.append(
            {
                "alert": alert,
                "x": start,
                "width": max(end - start, 2.0),
                "y": row * TIMELINE_ROW,
                "colour": SEVERITY_COLOURS.get(alert.severity, "#555"),
            }
        )
    return bars


def chart_data(page: CameraPage) -> dict[str, Any]:
    def rounded(value: float | None, digits: int = 2) -> float | None:
        return round(value, digits) if value is not None else None

    return {
        "labels": [hour["bucket"].strftime("%H:00") for hour in page.hours],
        "frames_per_second": [rounded(hour["frames_per_second"], 3) for hour in page.hours],
        "failure_rate_percent": [
            rounded(hour["failure_rate"] * 100) if hour["failure_rate"] is not None else None for hour in page.hours
        ],
        "p95_ms": [rounded(hour["p95_processing_time_ms"], 1) for hour in page.hours],
        "fps_mean": [rounded(hour["fps_mean"]) for hour in page.hours],
        "promised_fps": page.promised_fps,
        "completeness_percent": [
            rounded(hour["completeness"] * 100, 1) if hour["completeness"] is not None else None for hour in page.hours
        ],
        "detections": {
            object_type: [hour["detections"][object_type] for hour in page.hours] for object_type in page.object_types
        },
    }


def camera_page_view(request: HttpRequest, camera_id: uuid.UUID) -> HttpResponse:
    camera = get_object_or_404(Camera.objects.select_related("zone"), pk=camera_id)
    if not request.user.has_perm("cameras.view_camera"):
        raise Http404
    now = page_now()
    page = camera_page(camera=camera, now=now)
    return admin_pages.render(
        request,
        "admin/operations/camera.html",
        f"Camera {camera.name}",
        camera=camera,
        page=page,
        now=now,
        timeline=alert_timeline(page, now=now),
        timeline_width=TIMELINE_WIDTH,
        timeline_height=max(len(page.alerts), 1) * TIMELINE_ROW,
        charts=chart_data(page),
    )
