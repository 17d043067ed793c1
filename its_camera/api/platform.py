"""Endpoints about the caller itself, useful to check an integration's key."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

from its_camera.api.auth import ApiKeyAuth

router = Router(tags=["platform"])


class WhoAmIOut(Schema):
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None


@router.get("/whoami", response=WhoAmIOut, auth=ApiKeyAuth(), summary="The API key making this request")
def whoami(request: HttpRequest) -> object:
    return request.auth  # type: ignore[attr-defined]
