"""The OpenAPI document says what the API does: every status an operation can answer, and paths served outside
ninja (the live stream).

Ninja documents only the success status of each operation. The errors come from one place (its_camera.api.
errors, the body-limit middleware, the throttle) and follow the operation's shape, so they are added here from
that shape rather than repeated on every decorator:

| status | on |
|---|---|
| 400 | every operation (malformed body, cursor, header) |
| 401, 403 | operations with a security scheme (no key / key without the scope) |
| 404 | operations with a path parameter |
| 409 | writes (a name taken, a frame already stored, an alert in another state) |
| 413 | writes (a body past its limit) |
| 422 | every operation (invalid parameter or body, value out of range) |
| 429 | the throttled ingest operations |
| 503 | every operation (database unavailable; `Retry-After`) |

The fuzz test (tests/fuzz) fails on any status not declared here.
"""

from typing import Any

from ninja import NinjaAPI

__all__ = ["ERROR_SCHEMA_NAME", "DocumentedNinjaAPI", "error_responses"]

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"description": "A message, or a list/object naming each invalid field or row."}},
    "required": ["detail"],
}
ERROR_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, an invalid cursor or header.",
    401: "Missing, unknown or revoked API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such object.",
    409: "The request conflicts with stored data.",
    413: "The body is larger than this operation accepts.",
    422: "A parameter or value is invalid or outside its range (docs/security.md); nothing was written.",
    429: "Rate limit of this API key exceeded; see Retry-After.",
    503: "The database (or Redis, for the live stream) is unavailable; see Retry-After.",
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def error_responses(*statuses: int) -> dict[str, Any]:
    """OpenAPI `responses` entries for the given error statuses, each with the `{"detail": …}` body."""
    return {
        str(status): {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
        }
        for status in statuses
    }


def _statuses(path: str, method: str, operation: dict[str, Any], throttled_paths: frozenset[str]) -> list[int]:
    statuses = {400, 422, 503}
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method in WRITE_METHODS:
        statuses |= {409, 413}
    if path in throttled_paths and method in WRITE_METHODS:
        statuses.add(429)
    return sorted(statuses)


class DocumentedNinjaAPI(NinjaAPI):
    """A NinjaAPI whose document declares every error status and carries `extra_paths` (OpenAPI path items of
    views served outside ninja, keyed by their full path)."""

    def __init__(
        self,
        *args: Any,
        extra_paths: dict[str, dict[str, Any]] | None = None,
        throttled_paths: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.extra_paths = extra_paths or {}
        self.throttled_paths = throttled_paths

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
        paths = schema["paths"]
        for path, item in self.extra_paths.items():
            paths[path] = item
        for path, item in paths.items():
            for method, operation in item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                declared = operation["responses"]
                for status, response in error_responses(
                    *_statuses(path, method, operation, self.throttled_paths)
                ).items():
                    declared.setdefault(status, response)
        return schema
