"""Physical ranges, sizes and depths of every value that comes from outside, defined once.

Every API schema, ingest decoder and service takes its bounds from here (docs/security.md lists them), so
a value that can be stored can also be indexed, aggregated and read back by everyone else: a bbox of
±1e308 overflows the GiST index of every later batch that day, a processing time of 1e308 overflows the
rollups' sums, a JSON document 256 levels deep breaks every reader's serializer, a timestamp in year 0 or
10000 cannot even be loaded into Python.

Bounds that depend on the deployment (the timestamp acceptance window, JSON sizes) are settings, read at
call time; physical ranges are constants.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings

__all__ = [
    "BBOX_COORDINATE_MAX",
    "BBOX_COORDINATE_MIN",
    "CONFIDENCE_MAX",
    "FPS_MAX",
    "FRAME_NUMBER_MAX",
    "INT64_MAX",
    "LATITUDE_MAX",
    "LONGITUDE_MAX",
    "METRIC_VALUE_ABS_MAX",
    "PIXELS_MAX",
    "PROCESSING_TIME_MS_MAX",
    "READ_TIMESTAMP_MAX",
    "READ_TIMESTAMP_MIN",
    "JsonTooLarge",
    "TimestampWindow",
    "json_check",
    "json_depth",
    "read_timestamp_check",
    "timestamp_window",
]

INT64_MAX = 2**63 - 1

# Image coordinates in pixels (or normalised 0..1): a frame is at most PIXELS_MAX wide, and a box may reach
# past the frame's edge, but never by more than a few frames' width.
PIXELS_MAX = 32_767  # frame width/height: PostgreSQL smallint
BBOX_COORDINATE_MIN = -100_000.0
BBOX_COORDINATE_MAX = 100_000.0
CONFIDENCE_MAX = 1.0  # confidence and quality score: 0..1
PROCESSING_TIME_MS_MAX = 3_600_000.0  # one hour: a frame that took longer is not a processing time
FRAME_NUMBER_MAX = INT64_MAX
FPS_MAX = 1_000.0
# Far below float8's 1e308, so that sums and averages over billions of rows cannot overflow, yet above any
# real gauge or counter (bytes of a 1 PB disk).
METRIC_VALUE_ABS_MAX = 1e15
LATITUDE_MAX = 90.0
LONGITUDE_MAX = 180.0

# Time ranges asked of the read endpoints (`since`/`until`): representable, with room for arithmetic.
READ_TIMESTAMP_MIN = datetime(1970, 1, 1, tzinfo=UTC)
READ_TIMESTAMP_MAX = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimestampWindow:
    """The telemetry timestamps accepted at `now`: late rows up to TELEMETRY_ACCEPT_PAST_DAYS old, and a
    camera clock up to TELEMETRY_ACCEPT_FUTURE_MINUTES ahead."""

    earliest: datetime
    latest: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.earliest <= moment <= self.latest

    def describe(self) -> str:
        return (
            f"timestamps must be between {self.earliest:%Y-%m-%dT%H:%M:%SZ} and {self.latest:%Y-%m-%dT%H:%M:%SZ} "
            f"(the last {settings.TELEMETRY_ACCEPT_PAST_DAYS} days to {settings.TELEMETRY_ACCEPT_FUTURE_MINUTES} "
            "minutes ahead)"
        )


def timestamp_window(*, now: datetime) -> TimestampWindow:
    return TimestampWindow(
        earliest=now - timedelta(days=settings.TELEMETRY_ACCEPT_PAST_DAYS),
        latest=now + timedelta(minutes=settings.TELEMETRY_ACCEPT_FUTURE_MINUTES),
    )


def read_timestamp_check(moment: datetime | None, *, name: str) -> str | None:
    """An error message when a read's time bound is outside READ_TIMESTAMP_MIN..MAX (or naive), else None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return f"{name} must carry a time zone."
    try:
        in_range = READ_TIMESTAMP_MIN <= moment <= READ_TIMESTAMP_MAX
    except OverflowError:  # an offset that moves the moment past year 1 or 9999
        in_range = False
    if not in_range:
        return f"{name} must be between {READ_TIMESTAMP_MIN:%Y-%m-%d} and {READ_TIMESTAMP_MAX:%Y-%m-%d}."
    return None


class JsonTooLarge(ValueError):
    """A JSON value deeper or bigger than its limit; the message says which limit."""


def json_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply `value` nests (a scalar is 0, `[]` and `{}` are 1). Iterative, so a document of any
    depth is measured without a RecursionError; stops counting past `stop_after`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if stop_after is not None and deepest > stop_after:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def json_check(value: Any, *, max_depth: int, max_bytes: int | None = None, what: str = "JSON value") -> None:
    """Raise JsonTooLarge when `value` nests deeper than `max_depth` or encodes to more than `max_bytes`."""
    if json_depth(value, stop_after=max_depth) > max_depth:
        raise JsonTooLarge(f"{what} is nested deeper than {max_depth} levels.")
    if max_bytes is not None:
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            raise JsonTooLarge(f"{what} is not a JSON value.") from None
        if size > max_bytes:
            raise JsonTooLarge(f"{what} is {size} bytes encoded; the limit is {max_bytes}.")
