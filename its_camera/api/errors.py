"""One error shape for the whole API: `{"detail": ...}` with the right status, never an HTML page.

Ninja's exception handlers cover errors raised inside operations; ApiJsonErrorMiddleware covers
what Django answers before or around ninja (unknown URL, wrong method, oversize body, CSRF).
"""

import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, Throttled
from psycopg_pool import PoolTimeout

from its_camera.db.errors import is_unique_violation

logger = logging.getLogger(__name__)

API_PATH_PREFIX = "/api/"


def error_response(status: int, detail: object, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def install_error_handlers(api: NinjaAPI) -> None:
    def handler(exception_class: type[Exception]) -> Callable:
        return api.exception_handler(exception_class)

    @handler(AuthenticationError)
    def unauthorized(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(401, "Missing, unknown or revoked API key.", WWW_Authenticate='Bearer realm="api"')

    @handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        retry_after = str(max(1, int(exc.wait or 1)))
        return error_response(429, "Rate limit exceeded for this API key; retry later.", Retry_After=retry_after)

    @handler(DjangoValidationError)
    def invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return error_response(422, detail)

    @handler(IntegrityError)
    def conflict(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.info("API request conflicted with stored data: %s", exc)
        return error_response(409, "The request conflicts with existing data.")

    @handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(413, "Request body too large.")

    def unavailable(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
        logger.warning("Database unavailable while serving %s: %s", request.path, exc)
        return error_response(503, "Database unavailable, retry later.", Retry_After="5")

    for exception_class in (OperationalError, InterfaceError, PoolTimeout):
        api.add_exception_handler(exception_class, unavailable)

    @handler(DataError)
    def unacceptable_value(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A value that passed validation but that PostgreSQL refuses (a NUL character in text, a time zone
        # offset past ±15:59, a number out of a column's range): the client's input, so a 422, not a 500.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid value"
        logger.info("API request refused by the database as invalid input: %s", reason)
        return error_response(422, f"A value was refused by the database: {reason}")

    @handler(MultiPartParserError)
    def malformed_form(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A multipart body without a boundary (or otherwise broken) is the client's mistake, not a 500.
        return error_response(400, f"Malformed form body: {exc}")

    @handler(UnreadablePostError)
    def unreadable(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(400, "The request body could not be read.")

    @handler(RecursionError)
    def too_deep(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A body nested about a thousand levels deep exhausts the JSON parser's recursion before any schema
        # runs; its_camera.limits bounds what is stored far below that.
        return error_response(422, "The request's JSON is nested too deeply.")

    @handler(DatabaseError)
    def database_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        if is_unique_violation(exc):  # a duplicate key reported by Citus as XX000 (its_camera.db.errors)
            return conflict(request, exc)
        logger.exception("Database error while serving %s", request.path)
        return error_response(500, "Internal server error.")

    @handler(Exception)
    def internal(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("Unhandled error while serving %s", request.path)
        return error_response(500, "Internal server error.")


class ApiJsonErrorMiddleware:
    """Turns any non-JSON error response under /api/ into the API's JSON error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PATH_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            json_response = error_response(response.status_code, response.reason_phrase)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PATH_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "Request body too large.")
        logger.exception("Unhandled error while serving %s", request.path)
        return error_response(500, "Internal server error.")
