"""Log lines that say when, how bad, who wrote them and which request they belong to — also in the Celery
tasks the request started.

- `request_id_middleware` takes the caller's `X-Request-ID` (up to 64 characters of `A-Za-z0-9._-`; anything
  else is replaced) or makes one, keeps it in a context variable for the request's duration and echoes it in
  the response's `X-Request-ID`.
- `RequestIdFilter` (on the log handlers, config/settings/base.py) stamps every record with `request_id`, and
  with `task_id` / `task_name` inside a Celery task.
- Celery: `before_task_publish` puts the current request id in the message headers; `task_prerun` in the
  worker restores it (and `task_postrun` clears it), so a task's lines carry the id of the request that queued
  it. A task queued by a task inherits its id; one queued by beat has none ("-").
- `JsonFormatter` writes one JSON object per line (`LOG_FORMAT=json`) for log shippers: time (ISO 8601 UTC),
  level, logger, message, request_id, task_id, task_name, and the exception's traceback when there is one.
"""

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse

__all__ = [
    "HEADER",
    "JsonFormatter",
    "RequestIdFilter",
    "connect_signals",
    "current_request_id",
    "request_id_context",
    "request_id_middleware",
]

HEADER = "X-Request-ID"
CELERY_HEADER = "its_request_id"
NO_ID = "-"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("its_request_id", default=NO_ID)
_task: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("its_task", default=(NO_ID, NO_ID))


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_context(request_id: str) -> Iterator[str]:
    """Run a block as part of `request_id` (a management command, a test)."""
    token = _request_id.set(request_id)
    try:
        yield request_id
    finally:
        _request_id.reset(token)


def _incoming_id(request: HttpRequest) -> str:
    given = request.headers.get(HEADER, "")
    return given if _VALID.fullmatch(given) else uuid.uuid4().hex


def request_id_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], HttpResponse] | Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """Give every request an id for its log lines and the tasks it queues; works in sync and async stacks."""
    # The id is not reset when the middleware returns: Django logs a 4xx/5xx response ("Not Found: …") after the
    # middleware chain, and those lines belong to the request too. `request_finished` clears it (request_done).
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            _request_id.set(_incoming_id(request))
            response = await get_response(request)
            response[HEADER] = _request_id.get()
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        _request_id.set(_incoming_id(request))
        response = get_response(request)
        response[HEADER] = _request_id.get()
        return response

    return middleware


def request_done(**kwargs: Any) -> None:
    """`request_finished` receiver: lines after the response was sent belong to no request."""
    _request_id.set(NO_ID)


class RequestIdFilter(logging.Filter):
    """Stamps records with the request and task they belong to (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.task_id, record.task_name = _task.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, UTC timestamps; extra keys never break the line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_ID),
        }
        task_id = getattr(record, "task_id", NO_ID)
        if task_id != NO_ID:
            entry["task_id"] = task_id
            entry["task_name"] = getattr(record, "task_name", NO_ID)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# --- Celery -------------------------------------------------------------------------------------------


def _on_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = _request_id.get()
    if headers is not None and request_id != NO_ID:
        headers[CELERY_HEADER] = request_id


_task_tokens: dict[str, tuple[contextvars.Token[str], contextvars.Token[tuple[str, str]]]] = {}


def _on_task_start(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    inherited = getattr(task.request, CELERY_HEADER, None) if task is not None else None
    if not (isinstance(inherited, str) and _VALID.fullmatch(inherited)):
        inherited = NO_ID
    _task_tokens[task_id or ""] = (
        _request_id.set(inherited),
        _task.set((task_id or NO_ID, getattr(task, "name", NO_ID))),
    )


def _on_task_end(task_id: str | None = None, **kwargs: Any) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens is not None:
        _task.reset(tokens[1])
        _request_id.reset(tokens[0])


def connect_signals() -> None:
    """Clear the id when a request finishes; carry it into Celery tasks (publish and run)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun
    from django.core.signals import request_finished

    request_finished.connect(request_done, dispatch_uid="its_camera.logs.request_done")
    before_task_publish.connect(_on_publish, weak=False, dispatch_uid="its_camera.logs.publish")
    task_prerun.connect(_on_task_start, weak=False, dispatch_uid="its_camera.logs.task_start")
    task_postrun.connect(_on_task_end, weak=False, dispatch_uid="its_camera.logs.task_end")
