"""Errors the cameras services raise for the caller (API, admin, tasks) to turn into a response."""


class ConflictError(Exception):
    """The change conflicts with stored data (a duplicate name, an alert already resolved): HTTP 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
