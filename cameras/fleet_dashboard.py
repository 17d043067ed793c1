"""The live side of the fleet status page (admin, cameras' `fleet_status_view`): a JSON snapshot the
page's script starts from, then applies `camera.status` / `camera.removed` / `alert.*` events from the
SSE stream to (cameras/stream.py, with the admin session). See docs/live.md, "Fleet status page".

The snapshot carries the id of the newest event published *before* it was read; the script subscribes
with `?last_event_id=` that id, so no change between the snapshot and the subscription is lost (a change
that lands in both is counted twice until the next resync: the script reloads the snapshot every minute
and after any `stream.reset` / `fleet.reset`).
"""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from cameras.selectors.cameras import fleet_status_by_zone
from its_camera import admin_pages, events


@require_GET
def fleet_snapshot(request: HttpRequest) -> JsonResponse:
    if not admin_pages.allowed(request.user, "cameras.view_camera"):
        return JsonResponse({"detail": "The fleet snapshot needs the cameras.view_camera permission."}, status=403)
    try:
        last_event_id: int | None = events.last_event_id()
    except events.LiveEventsUnavailable:
        last_event_id = None  # the page still shows the snapshot, and says live updates are off
    rows = fleet_status_by_zone()
    return JsonResponse(
        {
            "generated_at": timezone.now().isoformat(),
            "last_event_id": last_event_id,
            "zones": [
                {
                    "zone_id": str(row.zone_id) if row.zone_id else None,
                    "zone_name": row.zone_name,
                    "streaming": row.streaming,
                    "recent": row.recent,
                    "stale": row.stale,
                    "open_alerts": row.open_alerts,
                }
                for row in rows
            ],
        }
    )


admin_pages.register(
    title="Fleet status",
    url_name="admin:cameras_camera_fleet_status",
    description="Streaming / recent / stale cameras by zone, updating live.",
    permission="cameras.view_camera",
)
