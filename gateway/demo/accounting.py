"""Did the demo keep the limit? Over-limit ampere-seconds from what the simulated cars physically draw.

Pure: the demo samples the cars' currents (on site phases) and the limit in force, and passes the time in. A car
may take up to 5 s to follow a lower pilot current (IEC 61851-1), so for 5 s after a limit is lowered the old
limit still counts; after that every ampere above the limit, on every phase, counts for as long as it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PerPhase = tuple[float, float, float]
IEC_61851_RESPONSE_S = 5.0


@dataclass
class OverLimitAccount:
    grace_s: float = IEC_61851_RESPONSE_S
    over_amp_seconds: float = 0.0
    peak_a: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    lowest_limit_a: float | None = None
    samples: int = 0
    _last_time: float | None = None
    _last_limit: PerPhase | None = None
    _lowered: list[list[tuple[float, float]]] = field(default_factory=lambda: [[], [], []])
    """Per phase: (when, the limit before) for every lowering still within the grace."""

    def allowed_a(self, now: float, phase: int, limit_a: float) -> float:
        """The limit that counts now: the limit in force, or a higher one lowered less than ``grace_s`` ago."""
        recent = [before for when, before in self._lowered[phase] if now - when < self.grace_s]
        return max([limit_a, *recent])

    def sample(self, now: float, drawn_a: PerPhase, limit_a: PerPhase) -> None:
        """Account the time since the previous sample at these currents and this limit."""
        if self._last_limit is not None:
            for phase in range(3):
                if limit_a[phase] < self._last_limit[phase]:
                    self._lowered[phase].append((now, self.allowed_a(now, phase, self._last_limit[phase])))
                self._lowered[phase] = [(w, b) for w, b in self._lowered[phase] if now - w < self.grace_s]
        dt = 0.0 if self._last_time is None else max(0.0, now - self._last_time)
        for phase in range(3):
            excess = drawn_a[phase] - self.allowed_a(now, phase, limit_a[phase])
            if excess > 0:
                self.over_amp_seconds += excess * dt
            self.peak_a[phase] = max(self.peak_a[phase], drawn_a[phase])
        lowest = min(limit_a)
        self.lowest_limit_a = lowest if self.lowest_limit_a is None else min(self.lowest_limit_a, lowest)
        self._last_time = now
        self._last_limit = limit_a
        self.samples += 1
