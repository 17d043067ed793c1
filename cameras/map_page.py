"""The camera map in the admin (`/admin/operations/map/`): cameras by live connection status, zones as boxes,
a click opens the camera page, the visible area filters the list beside the map.

The page loads a JSON snapshot (`map_snapshot`: cameras with a position, zones with a box, and the id of the
newest live event before the snapshot), then applies `camera.status` / `camera.removed` events from the SSE
stream (cameras/stream.py), as the fleet status page does. Leaflet is vendored (its_camera/static/vendor/
leaflet); with `MAP_TILE_URL` set it draws those tiles under the cameras, without it (closed networks) a plain
longitude/latitude canvas (Leaflet's CRS.Simple) with a graticule.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from cameras.selectors.cameras import MAP_MAX_CAMERAS, map_cameras, map_zones
from its_camera import admin_pages, events


def _camera_page_template() -> str:
    # The camera page is telemetry's; linked by URL name so cameras imports nothing from it.
    try:
        return reverse("operations-camera", args=["00000000-0000-0000-0000-000000000000"]).replace(
            "00000000-0000-0000-0000-000000000000", "{id}"
        )
    except NoReverseMatch:
        return reverse("admin:cameras_camera_change", args=["00000000-0000-0000-0000-000000000000"]).replace(
            "00000000-0000-0000-0000-000000000000", "{id}"
        )


@require_GET
def map_snapshot(request: HttpRequest) -> JsonResponse:
    try:
        last_event_id: int | None = events.last_event_id()
    except events.LiveEventsUnavailable:
        last_event_id = None  # the map still shows the snapshot, and says live updates are off
    cameras = map_cameras()
    return JsonResponse(
        {
            "generated_at": timezone.now().isoformat(),
            "last_event_id": last_event_id,
            "truncated": len(cameras) >= MAP_MAX_CAMERAS,
            "cameras": [
                {
                    "id": str(row["id"]),
                    "name": row["name"],
                    "status": row["status"],
                    "zone_id": str(row["zone_id"]) if row["zone_id"] else None,
                    "location": row["location"],
                    "lat": row["latitude"],
                    "lon": row["longitude"],
                    "connection_status": row["connection_status"],
                }
                for row in cameras
            ],
            "zones": [
                {
                    "id": str(row["id"]),
                    "name": row["name"],
                    "south": row["min_latitude"],
                    "west": row["min_longitude"],
                    "north": row["max_latitude"],
                    "east": row["max_longitude"],
                }
                for row in map_zones()
            ],
        }
    )


def map_page(request: HttpRequest) -> TemplateResponse:
    return admin_pages.render(
        request,
        "admin/operations/map.html",
        "Camera map",
        map_config={
            "snapshotUrl": reverse("operations-map-snapshot"),
            "streamUrl": reverse("camera-status-stream"),
            "cameraUrl": _camera_page_template(),
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
            "maxListed": 200,
        },
    )


admin_pages.register(
    title="Camera map",
    url_name="operations-map",
    description="Cameras by live status and zones on a map; the visible area filters the list.",
)
