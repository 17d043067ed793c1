"""The HTTP API: one NinjaAPI at /api/v1/, one router per app, errors handled in one place."""

from django.http import HttpRequest, HttpResponse

from archival.api import router as archival_router
from cameras.api import router as cameras_router
from cameras.stream import stream_openapi
from its_camera.api.errors import error_response, install_error_handlers
from its_camera.api.openapi import DocumentedNinjaAPI
from its_camera.api.platform import router as platform_router
from notifications.api import router as notifications_router
from telemetry.analytics_api import router as analytics_router
from telemetry.api import router as telemetry_router
from telemetry.selectors.cold import ColdDataUnavailable
from traffic.api import router as traffic_router

api = DocumentedNinjaAPI(
    title="ITS Camera Platform API",
    version="1.0.0",
    description=(
        "Register cameras, send heartbeats, push frames, detections and metrics, read analytics. "
        "Authenticate with an API key in `X-API-Key` or `Authorization: Bearer <key>`."
    ),
    urls_namespace="api-v1",
    # Served outside ninja (an async streaming view, config/urls.py), documented here all the same.
    extra_paths={"/api/v1/cameras/status/stream": stream_openapi()},
    throttled_paths=frozenset({"/api/v1/frames", "/api/v1/metrics", "/api/v1/frames/status"}),
)
install_error_handlers(api)


@api.exception_handler(ColdDataUnavailable)
def cold_data_unavailable(request: HttpRequest, exc: ColdDataUnavailable) -> HttpResponse:
    # Never an answer with a range silently missing: say which cold partitions could not be read.
    return error_response(503, {"message": str(exc), "partitions": exc.partitions}, Retry_After="60")


api.add_router("", platform_router)
api.add_router("", cameras_router)
api.add_router("", telemetry_router)
api.add_router("", analytics_router)
api.add_router("", archival_router)
api.add_router("", notifications_router)
api.add_router("", traffic_router)
