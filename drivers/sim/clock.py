"""Simulated time: the simulators' physics reads this instead of the wall clock, so it can run faster than life."""

from __future__ import annotations

import time
from collections.abc import Callable


class ScaledClock:
    """Seconds since creation, times ``speed`` (2.0: a 2 s vehicle lag passes in 1 s of real time)."""

    def __init__(self, speed: float = 1.0, *, source: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._source = source
        self._origin = source()

    def __call__(self) -> float:
        return (self._source() - self._origin) * self.speed
