"""Progress of a long command (`archive run`, `archive restore`, `rollups rebuild`, `partitions apply`): what it
is doing and how far along, without flooding logs.

Services take an optional `progress(what, done, total)` callback and call it as they go (`total` None when
unknown); they know nothing about terminals. A command passes a `ProgressReporter` bound to its stdout:

- on a terminal it rewrites one line in place (`\\r`), at most every `tty_interval` seconds;
- otherwise (a pipe, a log file, a container's log shipper) it writes a whole line only when the stage changes
  (`what` without a trailing "(detail)": the next partition is a new stage, the next hour of a rebuild is
  not), or at most every `log_interval` seconds, plus the last line: a 10-hour rebuild logs a few thousand
  lines at most, not one per step.

    reporter = ProgressReporter(self.stdout)
    rollups_rebuild(since=…, until=…, progress=reporter)
    reporter.finish()
"""

import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ProgressCallback", "ProgressReporter", "progress_noop"]


class ProgressCallback(Protocol):
    def __call__(self, what: str, done: int, total: int | None) -> None: ...


def progress_noop(what: str, done: int, total: int | None) -> None:
    """The default: report nothing."""


def _stream_is_tty(stream: Any) -> bool:
    inner = getattr(stream, "_out", stream)  # Django's OutputWrapper wraps the real stream
    isatty = getattr(inner, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _amount(done: int, total: int | None, unit: str) -> str:
    if total:
        return f"{done}/{total}{unit} ({done / total:.0%})"
    return f"{done}{unit}"


class ProgressReporter:
    def __init__(
        self,
        stream: Any,
        *,
        is_tty: bool | None = None,
        tty_interval: float = 0.1,
        log_interval: float = 10.0,
        unit: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.is_tty = _stream_is_tty(stream) if is_tty is None else is_tty
        self.tty_interval = tty_interval
        self.log_interval = log_interval
        self.unit = unit
        self.clock = clock
        self.started = clock()
        self.last_written = float("-inf")
        self.last_stage: str | None = None
        self.pending: str | None = None  # the newest line not written yet (written by finish())
        self.lines_written = 0

    def __call__(self, what: str, done: int, total: int | None) -> None:
        now = self.clock()
        elapsed = now - self.started
        line = f"{what}: {_amount(done, total, self.unit)}, {elapsed:.0f} s"
        stage = what.split(" (", 1)[0]  # "(…)" is detail: a new partition is a new stage, the next hour is not
        finished = total is not None and done >= total
        if self.is_tty:
            if now - self.last_written >= self.tty_interval or finished:
                self._write("\r" + line[:200].ljust(80), end="")
                self.last_written = now
                self.pending = None
            else:
                self.pending = line
            return
        if stage != self.last_stage or now - self.last_written >= self.log_interval:
            self._write(line)
            self.last_written = now
            self.last_stage = stage
            self.pending = None
        else:
            self.pending = line

    def finish(self) -> None:
        """Write the newest state if it was held back, and end the terminal's line."""
        if self.pending is not None:
            if self.is_tty:
                self._write("\r" + self.pending[:200].ljust(80), end="")
            else:
                self._write(self.pending)
            self.pending = None
        if self.is_tty and self.lines_written:
            self._write("")

    def _write(self, text: str, end: str = "\n") -> None:
        if hasattr(self.stream, "style_func"):  # Django's OutputWrapper adds its own line ending
            self.stream.write(text, ending=end)
        else:
            self.stream.write(text + end)
        if hasattr(self.stream, "flush"):
            self.stream.flush()
        self.lines_written += 1
