"""A small API mounted only in kernel tests, to exercise auth, errors and pagination in isolation."""

from django.db import OperationalError
from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI, Schema
from ninja.pagination import paginate

from config.urls import urlpatterns as project_urlpatterns
from its_camera.api.auth import ApiKeyAuth
from its_camera.api.errors import install_error_handlers
from its_camera.api.pagination import CursorPage
from its_camera.api.throttling import ApiKeyRateThrottle
from its_camera.choices import ApiScope
from its_camera.models import ApiKey

api = NinjaAPI(urls_namespace="kernel-test")
install_error_handlers(api)


class EchoIn(Schema):
    name: str
    count: int


class KeyOut(Schema):
    name: str


@api.get("/read", auth=ApiKeyAuth(ApiScope.CAMERAS_READ))
def read(request: HttpRequest) -> dict:
    return {"ok": True}


@api.post("/echo", auth=ApiKeyAuth(ApiScope.CAMERAS_WRITE))
def echo(request: HttpRequest, payload: EchoIn) -> dict:
    return payload.dict()


@api.post(
    "/ingest", auth=ApiKeyAuth(), throttle=ApiKeyRateThrottle("test-ingest", setting="API_INGEST_RATE_LIMIT_PER_SECOND")
)
def ingest(request: HttpRequest) -> dict:
    return {"ok": True}


@api.get("/boom")
def boom(request: HttpRequest) -> dict:
    raise RuntimeError("something unexpected")


@api.post("/store-text")
def store_text(request: HttpRequest, payload: EchoIn) -> dict:
    ApiKey.objects.create(name=payload.name, prefix=f"t{payload.count}", hashed_key="x")
    return {"ok": True}


@api.get("/db-down")
def db_down(request: HttpRequest) -> dict:
    raise OperationalError("server closed the connection unexpectedly")


@api.get("/keys", response=list[KeyOut])
@paginate(CursorPage, ordering=("name",), page_size=3)
def keys(request: HttpRequest) -> object:
    return ApiKey.objects.all()


urlpatterns = [path("api/kernel/", api.urls), *project_urlpatterns]
