"""Running counts the supervisor keeps for monitoring (``/metrics``): how long control steps take and how many
exchanges with each follower failed. Plain numbers, no metrics library: the web face turns them into Prometheus
families when scraped, so the control loop pays an addition, not a formatting."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

STEP_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds of the control-step duration histogram; a step writes setpoints, so it can take bus round trips."""


@dataclass
class StepHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(STEP_BUCKETS_S) + 1))
    """Per bucket (not cumulative); the last one is above every bound."""
    sum_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(STEP_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds
        self.count += 1


@dataclass
class RuntimeStats:
    steps: StepHistogram = field(default_factory=StepHistogram)
    failed_exchanges: dict[str, int] = field(default_factory=dict)
    """Per charger id: polls that got no valid answer, since start (kept when a charger is removed, as a counter
    must never go down)."""

    def exchange_failed(self, charger_id: str) -> None:
        self.failed_exchanges[charger_id] = self.failed_exchanges.get(charger_id, 0) + 1
