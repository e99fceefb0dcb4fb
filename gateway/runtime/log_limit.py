"""Logging that a flood cannot turn into a flood of log lines.

A fault that repeats for every request or every accepted connection (out of file handles, a client that sends
junk thousands of times a second) must be logged once, with a count, not once per occurrence: 14,000 tracebacks
a second fill the disk and stall the event loop that also runs the control loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

MAX_KEYS = 256
"""Distinct messages remembered; a flood of distinct messages forgets the oldest."""


class RateLimitedLog:
    """Log each distinct message (its format string) at most once per ``interval_s``; the next line says how many
    were suppressed meanwhile."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, message: str, *args: Any) -> None:
        self._log(logging.WARNING, message, args, with_traceback=False)

    def error(self, message: str, *args: Any) -> None:
        self._log(logging.ERROR, message, args, with_traceback=False)

    def exception(self, message: str, *args: Any) -> None:
        """ERROR with the traceback, for the first occurrence in an interval only."""
        self._log(logging.ERROR, message, args, with_traceback=True)

    def text(self, level: int, text: str) -> None:
        """``text`` as it is (no %-formatting); the text itself is what repeats."""
        self._log(level, "%s", (text,), with_traceback=False, key=text)

    def _log(self, level: int, message: str, args: tuple[Any, ...], *, with_traceback: bool,
             key: str | None = None) -> None:
        key = message if key is None else key
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return
        suppressed = last[1] if last is not None else 0
        if len(self._last) >= MAX_KEYS and key not in self._last:
            self._last.pop(next(iter(self._last)))
        self._last[key] = (now, 0)
        suffix = f" ({suppressed} more like this in the last {self._interval_s:g} s)" if suppressed else ""
        self._logger.log(level, message + suffix, *args, exc_info=with_traceback)


def limit_loop_errors(loop: asyncio.AbstractEventLoop, logger: logging.Logger | None = None,
                      interval_s: float = 60.0) -> None:
    """Make ``loop`` log the errors it reports itself (``socket.accept() out of system resource`` for every
    refused accept when file handles run out) once per message and interval instead of every time."""
    limited = RateLimitedLog(logger or logging.getLogger("asyncio"), interval_s)

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        limited.text(logging.ERROR, str(context.get("message", "event loop error")) + detail)

    loop.set_exception_handler(handle)
