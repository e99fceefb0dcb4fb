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

   One exception to departure order, for phases. Where the sessions together want more than a node has on a
   phase (1-phase cars crowding L1 of a board), an ampere of that phase gives a session that also draws on
   phases nobody crowds (a 3-phase car there) more energy than it gives a 1-phase car: 3× on one crowded phase
   of three. "It leaves later, it catches up later" fails when the crowd stays about as long as it does, and
   then departure order starves exactly the car the phase is worth most to. So such a session goes first, but
   only with what it could not take at its cap in the time it will have once the crowd has left (nothing, if
   that time is enough); the rest of its need waits its turn by departure. On a site of 1-phase cars, or where
   every phase a car draws on is crowded, nothing changes. (depot-3ph-known: 0.962 of the optimum by departure
   order, 0.990 with this and the rounding top-up of ``control.top_up``; docs/benchmark.md.)
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
    stay_s: float = 0.0
    """Time left until it leaves."""
    remaining_wh: float | None = None
    """Energy still wanted (None: unknown)."""
    watts_per_amp: float = 230.0
    """Power per ampere per phase it draws on: volts × phases."""


def urgency(need: Need, delivered_wh: float, volts: float, phases: int, cap_a: float,
            now: float) -> Urgency | None:
    """The session's urgency, or None if it has no departure ahead, or nothing left to take."""
    if need.departure_s is None or need.departure_s <= now:
        return None
    stay_s = need.departure_s - now
    if need.energy_wh is None:
        return Urgency(required_a=None, departure_s=need.departure_s, laxity_s=stay_s, stay_s=stay_s)
    remaining_wh = need.energy_wh - delivered_wh
    if remaining_wh <= 0:
        return None
    watts_per_amp = max(volts, 1.0) * max(phases, 1)
    required = RATE_MARGIN * remaining_wh * 3600.0 / (max(1.0, stay_s - DEADLINE_MARGIN_S) * watts_per_amp)
    at_cap_s = remaining_wh * 3600.0 / (max(cap_a, 1e-3) * watts_per_amp)
    return Urgency(required_a=required, departure_s=need.departure_s, laxity_s=stay_s - at_cap_s, stay_s=stay_s,
                   remaining_wh=remaining_wh, watts_per_amp=watts_per_amp)


def allocate_with_deadlines(requests: Sequence[Request], capacity: Mapping[NodePhase, float],
                            urgent: Mapping[str, Urgency],
                            shortest_first: Mapping[str, tuple[float, ...]] | None = None) -> dict[str, float]:
    """Amps per charger id, under the same contract as ``allocation.allocate``, serving ``urgent`` sessions first.

    With ``shortest_first`` (a sort key per charger, least first), every other request is then reserved too, in
    that order, each up to its cap: current goes to the first car until it is capped, then to the next.
    """
    if not urgent and shortest_first is None:
        return allocate(requests, capacity)
    wanting = [(r, _wanted(r, urgent[r.charger_id])) for r in requests if r.charger_id in urgent]
    overloaded = _overloaded(wanting, capacity)
    crowd = _longest_stays(wanting, urgent, overloaded)
    ordered: list[tuple[tuple[object, ...], Request, float]] = []
    for r, want in wanting:
        u = urgent[r.charger_id]
        ahead = _before_the_others_leave(r, u, crowd, overloaded)
        if ahead is None:
            ordered.append(((r.rank[:1], 1, u.departure_s), r, want))
        else:
            ordered.append(((r.rank[:1], 0, -_yield(r, overloaded), u.departure_s), r, ahead))
    wanted = [(r, want) for _, r, want in sorted(ordered, key=lambda item: item[0])]
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


def _overloaded(wanting: Sequence[tuple[Request, float]], capacity: Mapping[NodePhase, float]) -> set[NodePhase]:
    """The nodes and phases on which the urgent sessions together want more than there is."""
    load: dict[NodePhase, float] = {}
    for r, want in wanting:
        for key in r.constraints():
            load[key] = load.get(key, 0.0) + max(want, r.min_a)
    return {key for key, amps in load.items() if amps > capacity[key]}


def _longest_stays(wanting: Sequence[tuple[Request, float]], urgent: Mapping[str, Urgency],
                   overloaded: set[NodePhase]) -> dict[NodePhase, list[tuple[float, str]]]:
    """Per overloaded node and phase, the two sessions on it that stay longest (the longest but oneself)."""
    out: dict[NodePhase, list[tuple[float, str]]] = {}
    for r, _ in wanting:
        entry = (urgent[r.charger_id].stay_s, r.charger_id)
        for key in r.constraints():
            if key in overloaded:
                out[key] = sorted([*out.get(key, []), entry], reverse=True)[:2]
    return out


def _before_the_others_leave(r: Request, u: Urgency, crowd: Mapping[NodePhase, list[tuple[float, str]]],
                             overloaded: set[NodePhase]) -> float | None:
    """What a session that gets more energy from an ampere of a crowded phase than the crowd does must be given
    ahead of them: the rate of the energy it could not get after they have left, or None if it could.

    Departure order assumes a session that leaves later catches up once the earlier ones have gone. A session
    with phases nobody crowds (a 3-phase car on a board whose L1 the 1-phase cars fill) cannot, if the crowd
    stays about as long as it does; and every ampere of the crowded phase gives it more energy than it gives one
    of them. So it goes first, with only what it could not take, at its cap, in the time it will have alone.
    """
    share = _yield(r, overloaded)
    if not 1.0 < share < float("inf") or u.remaining_wh is None:
        return None
    stays = [stay for key in r.constraints() for stay, cid in crowd.get(key, ()) if cid != r.charger_id]
    if not stays:
        return None
    crowd_leaves_s = min(max(stays), u.stay_s)
    alone_s = u.stay_s - crowd_leaves_s
    before_wh = RATE_MARGIN * u.remaining_wh - r.cap_a * u.watts_per_amp * alone_s / 3600.0
    if before_wh <= 0.0:
        return None
    until_s = max(1.0, min(crowd_leaves_s, u.stay_s - DEADLINE_MARGIN_S))
    rate = before_wh * 3600.0 / (until_s * u.watts_per_amp)
    return min(r.cap_a, max(r.min_a, rate))


def _yield(r: Request, overloaded: set[NodePhase]) -> float:
    """Phases a session charges on per overloaded phase it draws from: what an ampere of the scarce phase gives."""
    scarce = sum(1 for phase in r.phases if any((node, phase) in overloaded for node in r.nodes))
    return len(r.phases) / scarce if scarce else float("inf")


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
