"""Cursor pagination for every list endpoint.

django-ninja's CursorPagination keeps a position on the first ordering field (with an offset for
ties), so pages stay stable while rows are inserted and no COUNT(*) is ever run.

    @router.get("/cameras", response=list[CameraOut])
    @paginate(CursorPage, ordering=("-created_at", "-id"))
    def camera_list(request): ...
"""

from ninja.pagination import CursorPagination


class CursorPage(CursorPagination):
    pass
