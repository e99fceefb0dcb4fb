"""The safety invariant, stated once (ARCHITECTURE.md): for every circuit node and every site phase,

    sum over chargers on that node and phase of  max(current it may draw now, current it draws now)  <=  node limit

A charger's *booking* is that max, per site phase; the controller computes it (``Controller.bookings``). This module
knows nothing of chargers' state: it adds loads up along each charger's circuit path and compares them with the
limits. ``room`` is "limit minus load per node and phase", which the controller needs wherever it asks what still
fits (capacity for the allocation, headroom for an increase, whether a plan fits); ``violations`` is where the
invariant fails. One function for both, so there is one definition of which phases and nodes a load counts on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PerPhase = tuple[float, float, float]
"""Amperes per site phase L1, L2, L3."""
NodePhase = tuple[str, int]

TOLERANCE_A = 1e-6
"""Sums of float currents may be this far off; a booking this close to its limit is within it."""


@dataclass(frozen=True, slots=True)
class Load:
    """Current on each site phase that counts against every node of ``nodes`` (a charger's circuit path)."""

    nodes: tuple[str, ...]
    amps: PerPhase


@dataclass(frozen=True, slots=True)
class Violation:
    node: str
    phase: int
    """Site phase, 0..2."""
    load_a: float
    limit_a: float

    @property
    def excess_a(self) -> float:
        return self.load_a - self.limit_a

    def __str__(self) -> str:
        return f"{self.node} L{self.phase + 1}: {self.load_a:.2f} A booked > {self.limit_a:g} A"


def on_phases(amps: float, phases: Iterable[int]) -> PerPhase:
    """``amps`` on each of ``phases``, 0 on the others."""
    out = [0.0, 0.0, 0.0]
    for phase in phases:
        out[phase] = amps
    return (out[0], out[1], out[2])


def room(limits: Mapping[str, PerPhase], loads: Iterable[Load]) -> dict[NodePhase, float]:
    """Limit minus load, per node of ``limits`` and site phase; negative where the loads exceed the limit.
    A load on a node that has no limit is an error (``KeyError``): every node on a path must be known."""
    out = {(node, phase): float(per_phase[phase]) for node, per_phase in limits.items() for phase in range(3)}
    for load in loads:
        for node in load.nodes:
            for phase in range(3):
                if load.amps[phase]:
                    out[(node, phase)] -= load.amps[phase]
    return out


def violations(limits: Mapping[str, PerPhase], bookings: Iterable[Load],
               tolerance_a: float = TOLERANCE_A) -> list[Violation]:
    """Every node and phase whose bookings add up to more than its limit, worst first."""
    found = [Violation(node, phase, limits[node][phase] - left, limits[node][phase])
             for (node, phase), left in room(limits, bookings).items() if left < -tolerance_a]
    return sorted(found, key=lambda v: -v.excess_a)
