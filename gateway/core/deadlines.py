"""Departure times and energy wanted: who must be served first, and with how much, so that cars leave charged.

Pure and synchronous, like the rest of the core. The controller hands in the same ``Request`` list it would give
``allocation.allocate`` and, for the sessions that carry a ``Need``, what it knows of their progress; this module
returns the grants. Without any need it is never called, so sharing is exactly as it is without deadlines.

Why earliest departure first with a reserved rate, and not a rolling linear program: the controller must decide
every second for up to hundreds of chargers, within the same safety rules (6 A or nothing, every node and phase,
sequencing done afterwards by the controller). The rate each car needs to finish by its departure is a number per
car, known in constant time; a greedy reservation in departure order and one pass of the max-min allocator then
cost about one pass more, and every rule the allocator keeps (capacity, minimums, rank order under scarcity) still
holds because the allocator does the final dividing. A rolling LP would need a solver in the core, a horizon, and
a fallback when it is late. Earliest deadline first meets every deadline a single shared limit allows; least
laxity was tried and lost energy in the benchmark (cars that can never finish have the least laxity and took the
current, so others missed their departures in turn).

The two passes:

1. **Reserve.** Only sessions with a departure take part, earliest departure first: each takes the current it
   needs to reach its energy by then (``required_a``, with a margin for the taper a car goes through at the end),
   at least its minimum and at most its cap, out of the room still left on every node and phase it draws on. A
   session that cannot finish even at its cap asks for its cap: whatever it does not get before it leaves is
   lost, while cars that stay can catch up later. One that cannot get its minimum gets nothing in this pass.
   Sessions without a departure are not served before them: a car that must leave soon may take the minimum of
   one that stays, as the optimum would.
2. **Share.** Everyone reserved in pass 1 is admitted again with what pass 1 gave it as its minimum (they fitted
   together, so they fit again, and they are taken first); then everyone else in the controller's own order (its
   priority and rotation); all then rise together above their minimums, max-min fair, as without deadlines. A
   session whose need is met is no longer urgent and shares like any other.

A session with a departure but no energy wanted is reserved its minimum only (first, under scarcity):
not knowing how much it needs, taking current from others for it would be a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.core.allocation import NodePhase, Request, allocate

DEADLINE_MARGIN_S = 900.0
"""Aim to be done this long before the departure: the last percent of a battery comes slowly (taper)."""
RATE_MARGIN = 1.15
"""And ask for this much more than the bare rate, for the same reason and for rounding down to whole amps."""


@dataclass(frozen=True, slots=True)
class Need:
    """What one session asks for; either may be unknown."""

    departure_s: float | None = None
    """When the car leaves, on the controller's clock (the ``now`` of ``Controller.step``)."""
    energy_wh: float | None = None
    """Energy it wants in this session, in total (not what is left)."""


@dataclass(frozen=True, slots=True)
class Urgency:
    required_a: float | None
    """Current per phase needed from now on to be done in time (None: energy wanted unknown)."""
    departure_s: float
    laxity_s: float
    """How long it could still wait and then, at its cap, be done in time (negative: it cannot finish)."""


def urgency(need: Need, delivered_wh: float, volts: float, phases: int, cap_a: float,
            now: float) -> Urgency | None:
    """The session's urgency, or None if it has no departure ahead, or nothing left to take."""
    if need.departure_s is None or need.departure_s <= now:
        return None
    stay_s = need.departure_s - now
    if need.energy_wh is None:
        return Urgency(required_a=None, departure_s=need.departure_s, laxity_s=stay_s)
    remaining_wh = need.energy_wh - delivered_wh
    if remaining_wh <= 0:
        return None
    watts_per_amp = max(volts, 1.0) * max(phases, 1)
    required = RATE_MARGIN * remaining_wh * 3600.0 / (max(1.0, stay_s - DEADLINE_MARGIN_S) * watts_per_amp)
    at_cap_s = remaining_wh * 3600.0 / (max(cap_a, 1e-3) * watts_per_amp)
    return Urgency(required_a=required, departure_s=need.departure_s, laxity_s=stay_s - at_cap_s)


def allocate_with_deadlines(requests: Sequence[Request], capacity: Mapping[NodePhase, float],
                            urgent: Mapping[str, Urgency],
                            shortest_first: Mapping[str, tuple[float, ...]] | None = None) -> dict[str, float]:
    """Amps per charger id, under the same contract as ``allocation.allocate``, serving ``urgent`` sessions first.

    With ``shortest_first`` (a sort key per charger, least first), every other request is then reserved too, in
    that order, each up to its cap: current goes to the first car until it is capped, then to the next.
    """
    if not urgent and shortest_first is None:
        return allocate(requests, capacity)
    by_departure = sorted((r for r in requests if r.charger_id in urgent),
                          key=lambda r: (r.rank[:1], urgent[r.charger_id].departure_s))
    wanted = [(r, _wanted(r, urgent[r.charger_id])) for r in by_departure]
    if shortest_first is not None:
        rest = sorted((r for r in requests if r.charger_id not in urgent),
                      key=lambda r: (r.rank[:1], shortest_first[r.charger_id]))
        wanted += [(r, r.cap_a) for r in rest]
    reserved = _reserve(wanted, capacity)
    share = [replace(r, min_a=reserved[r.charger_id], rank=(0.0,)) if r.charger_id in reserved
             else replace(r, rank=(1.0, *r.rank)) for r in requests]
    return allocate(share, capacity)


def _wanted(r: Request, u: Urgency) -> float:
    """A session that can still make it asks for the rate it needs; one that cannot, even at its cap, asks for
    its cap (what it does not get before it leaves is lost); one without energy wanted asks for its minimum."""
    if u.required_a is None:
        return r.min_a
    return r.cap_a if u.laxity_s < 0 else max(r.min_a, u.required_a)


def _reserve(wanted: Sequence[tuple[Request, float]], capacity: Mapping[NodePhase, float]) -> dict[str, float]:
    """In the order given, each request takes what it wants (at least its minimum, at most its cap) out of the room
    every node and phase it draws on still has; one that cannot get its minimum gets nothing here."""
    room: dict[NodePhase, float] = {}
    reserved: dict[str, float] = {}
    for r, want in wanted:
        keys = r.constraints()
        for key in keys:
            if key not in room:
                value = capacity[key]
                room[key] = value if value > 0.0 else 0.0
        amps = min([r.cap_a, max(r.min_a, want)] + [room[key] for key in keys])
        if amps < r.min_a or amps <= 0.0:
            continue
        for key in keys:
            room[key] -= amps
        reserved[r.charger_id] = amps
    return reserved
