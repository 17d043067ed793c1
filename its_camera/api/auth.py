"""API-key authentication for django-ninja, with scopes.

    router = Router(auth=ApiKeyAuth(ApiScope.CAMERAS_READ))

No key or an unknown/revoked key: 401. A valid key without the scope: 403.
"""

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyHeader

from its_camera.models import ApiKey
from its_camera.services.api_keys import api_key_authenticate


class ApiKeyAuth(APIKeyHeader):
    param_name = "X-API-Key"

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes
        super().__init__()

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.headers.get(self.param_name)
        if key:
            return key
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return credentials.strip()
        return None

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not key:
            return None
        api_key: ApiKey | None = api_key_authenticate(raw_key=key)
        if api_key is None:
            return None
        missing = [scope for scope in self.scopes if not api_key.has_scope(scope)]
        if missing:
            raise HttpError(403, f"This API key lacks the scope(s): {', '.join(missing)}")
        return api_key
