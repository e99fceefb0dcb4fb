"""Who gets how many amps: max-min fair water-filling over every circuit node and phase at once.

Pure and synchronous: no I/O, no clock. The controller decides *who wants current and how much they could take*
(each ``Request``) and *how much room each node has on each phase* (``capacity``, already net of chargers the
controller cannot command); this module only divides.

Two stages, because a charger gets 0 A or at least its minimum (IEC 61851: 6 A), which no continuous fair-share
rule respects by itself:

1. **Admission.** In ``rank`` order (the controller encodes priority and rotation there), a request is admitted if
   its minimum still fits on every (node, phase) it touches, alongside the minimums already admitted. A request
   whose cap is below its minimum is never admitted.
2. **Water-filling above the minimum.** Every admitted request starts at its minimum; then all rise together
   (in proportion to ``weight``) until a (node, phase) constraint binds or a request reaches its cap; those freeze
   and the rest go on. The result is max-min fair on the share above the minimum.

The result never exceeds any capacity (up to float rounding in the last few ulps, which the controller removes by
flooring to the charger's resolution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NodePhase = tuple[str, int]
"""A constraint: a circuit node id and a site phase index 0..2."""

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Request:
    """One charger that should be given current."""

    charger_id: str
    nodes: tuple[str, ...]
    """The charger's circuit and every node above it, up to and including the site."""
    phases: tuple[int, ...]
    """Site phases (0..2) the charger draws on."""
    cap_a: float
    """The most it can use: least of nameplate, breaker, OCPP and learned vehicle limits."""
    min_a: float = 6.0
    weight: float = 1.0
    rank: tuple[float, ...] = ()
    """Admission order under scarcity, lowest first (ties keep input order)."""

    def constraints(self) -> list[NodePhase]:
        return [(node, phase) for node in self.nodes for phase in self.phases]


def allocate(requests: Sequence[Request], capacity: Mapping[NodePhase, float]) -> dict[str, float]:
    """Amps per charger id: 0 or between ``min_a`` and ``cap_a``, within every capacity.

    A (node, phase) missing from ``capacity`` is a programming error (every node has a limit) and raises
    ``KeyError``: an unknown node must never mean "unlimited".
    """
    room = {key: max(0.0, value) for key, value in capacity.items()}
    grant = {r.charger_id: 0.0 for r in requests}
    admitted: list[Request] = []
    order = sorted(range(len(requests)), key=lambda i: (requests[i].rank, i))
    for i in order:
        r = requests[i]
        if r.cap_a + _EPS < r.min_a or r.cap_a <= 0:
            continue
        keys = r.constraints()
        if all(room[k] + _EPS >= r.min_a for k in keys):
            for k in keys:
                room[k] -= r.min_a
            grant[r.charger_id] = r.min_a
            admitted.append(r)
    _fill(admitted, room, grant)
    return grant


def _fill(admitted: list[Request], room: dict[NodePhase, float], grant: dict[str, float]) -> None:
    """Progressive filling of the share above the minimum, freezing at each binding constraint or cap."""
    active = [r for r in admitted if r.cap_a - grant[r.charger_id] > _EPS]
    members: dict[NodePhase, list[Request]] = {}
    for r in active:
        for k in r.constraints():
            members.setdefault(k, []).append(r)
    while active:
        live = {r.charger_id for r in active}
        weight_on = {k: sum(r.weight for r in rs if r.charger_id in live) for k, rs in members.items()}
        step = min((r.cap_a - grant[r.charger_id]) / r.weight for r in active)
        for k, w in weight_on.items():
            if w > 0:
                step = min(step, room[k] / w)
        step = max(step, 0.0)
        for r in active:
            grant[r.charger_id] += step * r.weight
        for k, w in weight_on.items():
            room[k] -= step * w
        saturated = {k for k, w in weight_on.items() if w > 0 and room[k] <= _EPS}
        active = [r for r in active if r.cap_a - grant[r.charger_id] > _EPS
                  and not any(k in saturated for k in r.constraints())]
