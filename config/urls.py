from django.contrib import admin
from django.urls import path

from cameras.fleet_dashboard import fleet_snapshot
from cameras.map_page import map_page, map_snapshot
from cameras.stream import camera_status_stream
from config.api import api
from its_camera import admin_pages, health, metrics
from telemetry.camera_page import camera_page_view

urlpatterns = [
    # Operations pages in the admin (staff only): before admin/, whose app-label pattern would claim them.
    path("admin/operations/health/", admin.site.admin_view(admin_pages.health_page), name="operations-health"),
    path("admin/operations/fleet/snapshot", admin.site.admin_view(fleet_snapshot), name="operations-fleet-snapshot"),
    path(
        "admin/operations/cameras/<uuid:camera_id>/",
        admin.site.admin_view(camera_page_view),
        name="operations-camera",
    ),
    path("admin/operations/map/", admin.site.admin_view(map_page), name="operations-map"),
    path("admin/operations/map/snapshot", admin.site.admin_view(map_snapshot), name="operations-map-snapshot"),
    path("admin/", admin.site.urls),
    # An async streaming view outside ninja, before the API's include so this path reaches it (docs/live.md).
    path("api/v1/cameras/status/stream", camera_status_stream, name="camera-status-stream"),
    path("api/v1/", api.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/status", health.status_view, name="health-status"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
