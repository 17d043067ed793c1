"""Traffic dashboards: the panel on telemetry's ingest dashboard (objects beside detections, registered in
traffic.apps) and the context of the traffic page (per camera or zone: crossings by class and direction over the
day, the peak hour, the lines drawn on the frame outline). Bounded reads through the counts' indexes."""

import uuid
from datetime import datetime, timedelta
from typing import Any

from cameras.models import Camera, Zone
from traffic.models import CountingLineVersion, LineCount, ObjectCount
from traffic.selectors.counts import objects_by_class, peak_hour
from traffic.selectors.definitions import camera_frame_size

__all__ = ["dashboard_context", "objects_beside_detections_panel"]

MAX_CAMERAS_DRAWN = 24


def objects_beside_detections_panel(*, now: datetime) -> dict[str, Any]:
    return {"template": "admin/traffic/objects_panel.html", "objects": objects_by_class(now=now)}


def _frames(cameras: list[Camera], *, day: datetime) -> list[dict[str, Any]]:
    """Each camera's frame outline with its lines in force at the end of the day (at most MAX_CAMERAS_DRAWN)."""
    versions: dict[uuid.UUID, list[dict[str, Any]]] = {}
    in_force = CountingLineVersion.objects.filter(
        line__camera__in=cameras, valid_from__lt=day + timedelta(days=1)
    ).select_related("line")
    for version in in_force:
        if version.valid_until is None or version.valid_until >= day + timedelta(days=1):
            versions.setdefault(version.line.camera_id, []).append(
                {
                    "name": version.line.name,
                    "x1": version.x1,
                    "y1": version.y1,
                    "x2": version.x2,
                    "y2": version.y2,
                    "in_side": version.in_side,
                }
            )
    drawn = []
    for camera in cameras[:MAX_CAMERAS_DRAWN]:
        width, height = camera_frame_size(camera=camera, now=day + timedelta(days=1))
        drawn.append({"camera": camera, "width": width, "height": height, "lines": versions.get(camera.id, [])})
    return drawn


def dashboard_context(*, camera: Camera | None, zone: Zone | None, day: datetime) -> dict[str, Any]:
    if camera is None and zone is None:
        return {"day": day, "selected": None}
    selected_id: uuid.UUID = camera.id if camera else zone.id  # type: ignore[union-attr]
    scope_filter = {"camera_id": selected_id} if camera else {"zone_id": selected_id}
    hours = (
        LineCount.objects.filter(
            granularity="hour", bucket__gte=day, bucket__lt=day + timedelta(days=1), **scope_filter
        )
        .order_by("bucket", "direction", "object_type")
        .values("bucket", "direction", "object_type", "crossings")
    )
    series: dict[str, list[int]] = {}
    by_class: dict[tuple[str, str], int] = {}
    for row in hours:
        key = f"{row['object_type']} {row['direction']}"
        series.setdefault(key, [0] * 24)[row["bucket"].hour] += row["crossings"]
        class_key = (row["object_type"], row["direction"])
        by_class[class_key] = by_class.get(class_key, 0) + row["crossings"]
    objects_scope = ("camera" if camera else "zone", selected_id)
    objects = (
        ObjectCount.rows.filter(granularity="day", scope=objects_scope[0], scope_id=objects_scope[1], bucket=day)
        .order_by("-objects")
        .values("object_type", "objects")
    )
    cameras = [camera] if camera else list(Camera.objects.filter(zone=zone).order_by("name")[:MAX_CAMERAS_DRAWN])
    return {
        "day": day,
        "selected": camera or zone,
        "selected_kind": "camera" if camera else "zone",
        "peak": peak_hour(day=day, camera_id=camera.id if camera else None, zone_id=zone.id if zone else None),
        "by_class": [{"object_type": t, "direction": d, "crossings": n} for (t, d), n in sorted(by_class.items())],
        "objects": list(objects),
        "frames": _frames(cameras, day=day),
        "chart": {"labels": [f"{hour:02d}:00" for hour in range(24)], "series": series},
    }
