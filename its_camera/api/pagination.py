"""Cursor pagination for every list endpoint.

django-ninja's CursorPagination keeps a position on the first ordering field (with an offset for
ties), so pages stay stable while rows are inserted and no COUNT(*) is ever run.

    @router.get("/cameras", response=list[CameraOut])
    @paginate(CursorPage, ordering=("-created_at", "-id"))
    def camera_list(request): ...

A cursor comes from the client, so it is checked like any other input: at most MAX_CURSOR_LENGTH characters,
and one that does not decode, or whose position does not fit the ordering field (`?cursor=bz0tMQ==`, an
offset of -1), is a 400 "Invalid cursor." rather than a 500.
"""

from typing import Any

import pydantic
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import HttpRequest
from ninja import Field
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import CursorPagination

MAX_CURSOR_LENGTH = 1024
INVALID_CURSOR = (
    pydantic.ValidationError,
    NinjaValidationError,
    DjangoValidationError,
    DataError,
    ValueError,
    TypeError,
    OverflowError,
    RuntimeWarning,  # a naive datetime position, when warnings are errors (the test suite)
)


class CursorPage(CursorPagination):
    class Input(CursorPagination.Input):
        cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH, description="The `next` link's cursor.")

    def paginate_queryset(self, queryset: Any, pagination: Any, request: HttpRequest, **params: Any) -> Any:
        if not pagination.cursor:
            return super().paginate_queryset(queryset, pagination, request, **params)
        try:
            return super().paginate_queryset(queryset, pagination, request, **params)
        except INVALID_CURSOR:
            raise HttpError(400, "Invalid cursor.") from None
