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

Rounding. "Fits" tolerates 1e-9 A of float noise, so a limit that arithmetic left at 17.999999999999996 A still
takes three 6 A chargers, and a cap within 1e-9 A below the minimum counts as the minimum. That tolerance is the
only way a result can exceed a capacity: by at most 1e-9 A, on a (node, phase) that the admitted minimums alone
fill. The share above the minimum is computed against each room less a guard (a few ulps per charger, and a
picoamp) larger than every rounding error the computation and the caller's own summation can make, so it never
overshoots; it costs nanoamps at most.

Speed (see docs/allocation.md for figures): the filling is not run in rounds over every constraint, but as one
sweep over the common *level* ``t`` (amps above the minimum per unit of weight), from one event to the next. A
request frozen at level ``t`` holds ``min_a + weight * t``. Requests that touch exactly the same constraints (same
circuit, same phases) form a group, and all bookkeeping is per group: its still-rising weight, and the current its
frozen members use above their minimums. A constraint binds at level ``(room - used) / rising weight``, summed over
its groups; freezing anyone only ever raises that level, so each constraint sits in a heap under a lower bound and
is re-summed only when it comes to the top. Caps are known levels ``(cap_a - min_a) / weight``, taken in sorted
order. Admission checks, one request at a time, only the constraints that could refuse someone at all.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

NodePhase = tuple[str, int]
"""A constraint: a circuit node id and a site phase index 0..2."""

_EPS = 1e-9
"""Float noise tolerated when a minimum is checked against the room left (part of the contract's admission rule)."""
_INF = math.inf
_ULP = 2.0**-52
"""Twice the relative rounding error of one float operation."""
_GUARD_ULPS_PER_CHARGER = 8
"""Room kept back per constraint, in ulps of its limit per admitted charger: about twice the worst-case rounding."""
_GUARD_A = 1e-12
"""And a picoamp more, for limits so small (subnormal floats) that relative rounding bounds no longer hold."""
_WEIGHTS = (1e-9, 1e9)
"""Accepted weights: far wider than any policy needs, narrow enough that levels (amps / weight) stay finite."""


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
    ``KeyError``, for any request, admissible or not: an unknown node must never mean "unlimited". A negative or
    NaN capacity is no room. ``ValueError`` for a request that makes no sense: a weight outside 1e-9..1e9, a
    minimum that is negative or not finite, a cap that is not finite, a node or phase named twice, or a charger id
    used twice.
    """
    problem = _Problem(requests, capacity)
    grant = dict.fromkeys(problem.charger_ids, 0.0)
    if len(grant) != len(requests):
        raise ValueError("a charger id appears in more than one request")
    room = list(problem.limit)
    admitted = _admit(problem, requests, room)
    _Sweep(problem, admitted, room).run(grant)
    return grant


class _Problem:
    """The requests as flat lists, constraints as small integers, and requests grouped by identical constraints."""

    __slots__ = ("caps", "charger_ids", "group_of", "groups_on_key", "keys_of_group", "limit", "mins", "weights")

    def __init__(self, requests: Sequence[Request], capacity: Mapping[NodePhase, float]) -> None:
        self.charger_ids = [r.charger_id for r in requests]
        self.weights = [r.weight for r in requests]
        self.mins = [r.min_a for r in requests]
        self.caps = [r.cap_a for r in requests]
        if requests:
            _check_numbers(requests, self.weights, self.mins, self.caps)
        group_id: dict[tuple[tuple[str, ...], tuple[int, ...]], int] = {}
        self.group_of = [group_id.setdefault((r.nodes, r.phases), len(group_id)) for r in requests]
        key_id: dict[NodePhase, int] = {}
        """Constraint ids, given in order of first use: only constraints someone touches are ever looked at."""
        self.limit: list[float] = []
        """Room per constraint id before anything is admitted: the capacity, or 0 if it is negative or NaN."""
        self.keys_of_group: list[list[int]] = []
        path_keys: dict[tuple[str, ...], dict[int, list[int]]] = {}
        """Constraint ids along one path of nodes, per phase: groups on the same circuit share them."""
        sound_phases: set[tuple[int, ...]] = set()
        for g, (nodes, phases) in enumerate(group_id):
            along = path_keys.get(nodes)
            if along is None:
                if len(set(nodes)) != len(nodes):
                    raise self._named_twice(g, nodes, phases)
                along = path_keys[nodes] = {}
            if phases not in sound_phases:
                if len(set(phases)) != len(phases):
                    raise self._named_twice(g, nodes, phases)
                sound_phases.add(phases)
            keys: list[int] = []
            for phase in phases:
                on_phase = along.get(phase)
                if on_phase is None:
                    on_phase = along[phase] = []
                    for node in nodes:
                        k = key_id.get((node, phase))
                        if k is None:
                            value = capacity[node, phase]
                            k = key_id[node, phase] = len(self.limit)
                            self.limit.append(value if value > 0.0 else 0.0)
                        on_phase.append(k)
                keys += on_phase
            self.keys_of_group.append(keys)
        self.groups_on_key: list[list[int]] = [[] for _ in self.limit]
        for g, keys in enumerate(self.keys_of_group):
            for k in keys:
                self.groups_on_key[k].append(g)

    def _named_twice(self, group: int, nodes: tuple[str, ...], phases: tuple[int, ...]) -> ValueError:
        charger_id = self.charger_ids[self.group_of.index(group)]
        return ValueError(f"request {charger_id!r}: a node or phase is named twice in {nodes!r} x {phases!r}")


def _check_numbers(requests: Sequence[Request], weights: list[float], mins: list[float], caps: list[float]) -> None:
    """Reject NaN, infinite and out-of-range inputs: checked on whole lists (fast), searched one by one to explain."""
    if (min(weights) >= _WEIGHTS[0] and max(weights) <= _WEIGHTS[1] and not math.isnan(sum(weights))
            and min(mins) >= 0.0 and max(mins) < _INF and not math.isnan(sum(mins))
            and min(caps) > -_INF and max(caps) < _INF and not math.isnan(sum(caps))):
        return
    for r in requests:
        if not (_WEIGHTS[0] <= r.weight <= _WEIGHTS[1] and 0.0 <= r.min_a < _INF and -_INF < r.cap_a < _INF):
            raise ValueError(f"request {r.charger_id!r}: weight must be within {_WEIGHTS[0]:g}..{_WEIGHTS[1]:g}, "
                             f"min_a non-negative and finite, cap_a finite; got weight={r.weight!r} "
                             f"min_a={r.min_a!r} cap_a={r.cap_a!r}")


def _admit(problem: _Problem, requests: Sequence[Request], room: list[float]) -> list[int]:
    """Indices of admitted requests; their minimums are taken out of ``room``.

    Only constraints that could turn someone away are checked one request at a time, in rank order, with the
    contract's exact arithmetic. A constraint on which every admissible minimum together fits (with a margin for
    rounding) never refuses anyone: requests that touch only such constraints are simply admitted, and the room
    those constraints keep is worked out at the end (all that was asked of them, less what was refused elsewhere).
    """
    mins, caps, group_of, keys_of_group = problem.mins, problem.caps, problem.group_of, problem.keys_of_group
    admissible = [i for i, (need, cap) in enumerate(zip(mins, caps, strict=True)) if cap + _EPS >= need and cap > 0.0]
    wanted_by_group = [0.0] * len(keys_of_group)
    for i in admissible:
        wanted_by_group[group_of[i]] += mins[i]
    wanted = [sum(map(wanted_by_group.__getitem__, groups)) for groups in problem.groups_on_key]
    margin = (len(admissible) + 1) * _ULP
    contested = [want > 0.0 and want + margin * (want + limit) > limit
                 for want, limit in zip(wanted, room, strict=True)]
    checked_keys = [[k for k in keys if contested[k]] for keys in keys_of_group]

    admitted = [i for i in admissible if not checked_keys[group_of[i]]]
    contenders = [i for i in admissible if checked_keys[group_of[i]]]
    ranks = [r.rank for r in requests]
    refused: list[int] = []
    for i in sorted(contenders, key=ranks.__getitem__):
        need = mins[i]
        keys = checked_keys[group_of[i]]
        for k in keys:
            if room[k] + _EPS < need:
                refused.append(i)
                break
        else:
            for k in keys:
                room[k] -= need
            admitted.append(i)
    for k, want in enumerate(wanted):
        if not contested[k]:
            room[k] -= want
    for i in refused:
        for k in keys_of_group[group_of[i]]:
            if not contested[k]:
                room[k] += mins[i]
    return admitted


class _Sweep:
    """Water-filling of the admitted requests' share above their minimums, as one sweep over the level."""

    __slots__ = ("admitted", "full_weight", "groups_on_key", "heap", "level", "level_cap", "members", "problem",
                 "rising_left", "rising_weight", "room", "used", "weights")

    def __init__(self, problem: _Problem, admitted: list[int], room: list[float]) -> None:
        self.problem = problem
        self.admitted = admitted
        self.weights = weights = problem.weights
        self.groups_on_key = problem.groups_on_key
        mins, caps, group_of = problem.mins, problem.caps, problem.group_of
        self.level = [-1.0] * len(mins)
        """Per request: the level at which it froze; -1 while it rises, or if it never rises."""
        self.level_cap: dict[int, float] = {}
        self.members: dict[int, list[int]] = {}
        """Per group: its requests that rise at all (admitted, cap above minimum)."""
        for i in admitted:
            headroom = caps[i] - mins[i]
            if headroom > _EPS:
                self.level_cap[i] = headroom / weights[i]
                self.members.setdefault(group_of[i], []).append(i)
        n_groups = len(problem.keys_of_group)
        self.rising_left = [0] * n_groups
        self.rising_weight = [0.0] * n_groups
        self.used = [0.0] * n_groups
        """Per group: amps above the minimum that its frozen members hold."""
        for g, members in self.members.items():
            self.rising_left[g] = len(members)
            self.rising_weight[g] = sum(map(weights.__getitem__, members))
        self.full_weight = list(self.rising_weight)
        """Per group: the weight of all its rising members, for a group that binds before any of them is capped."""
        guard = (len(admitted) + 1) * _GUARD_ULPS_PER_CHARGER * _ULP
        self.room = room
        self.heap: list[tuple[float, int]] = []
        for k, groups in enumerate(self.groups_on_key):
            if room[k] < _INF:
                room[k] -= guard * problem.limit[k] + _GUARD_A
                weight = sum(map(self.rising_weight.__getitem__, groups))
                if weight > 0.0:
                    self.heap.append((room[k] / weight, k))
        heapq.heapify(self.heap)

    def run(self, grant: dict[str, float]) -> None:
        """Freeze everyone, in level order; then write each admitted request's amps into ``grant``."""
        heap, level, weights, used = self.heap, self.level, self.weights, self.used
        rising_left, rising_weight, groups_on_key, room = (self.rising_left, self.rising_weight, self.groups_on_key,
                                                           self.room)
        group_of = self.problem.group_of
        heappush, heappop = heapq.heappush, heapq.heappop
        still_rising = len(self.level_cap)
        next_bind = heap[0][0] if heap else _INF
        for i, at_cap in sorted(self.level_cap.items(), key=itemgetter(1)):
            if at_cap >= next_bind:
                while heap and heap[0][0] <= at_cap:
                    stale, k = heappop(heap)
                    groups = groups_on_key[k]
                    weight = sum(map(rising_weight.__getitem__, groups))
                    if weight <= 0.0 and not any(map(rising_left.__getitem__, groups)):
                        continue
                    left = room[k] - sum(map(used.__getitem__, groups))
                    if weight > 0.0 and left / weight > stale:
                        heappush(heap, (left / weight, k))
                    else:
                        still_rising -= self._bind(left, at_cap, groups)
                if not still_rising:
                    break
                next_bind = heap[0][0] if heap else _INF
            if level[i] >= 0.0:
                continue
            still_rising -= 1
            level[i] = at_cap
            g = group_of[i]
            w = weights[i]
            used[g] += w * at_cap
            if rising_left[g] > 1:
                rising_left[g] -= 1
                rising_weight[g] -= w
            else:
                rising_left[g] = 0
                rising_weight[g] = 0.0

        self._settle()
        mins, caps, ids = self.problem.mins, self.problem.caps, self.problem.charger_ids
        for i in self.admitted:
            t = level[i]
            if t < 0.0:
                grant[ids[i]] = mins[i]
            else:
                amps = mins[i] + weights[i] * t
                grant[ids[i]] = amps if amps < caps[i] else caps[i]

    def _bind(self, left: float, ceiling: float, groups: list[int]) -> int:
        """A constraint with ``left`` amps of room is full: freeze all still rising on it, at the level that fills it.

        That level comes from the weights of the requests actually frozen, not from the running per-group totals
        (which carry rounding from earlier freezes), so what is booked is exactly what they are given. Returns how
        many it froze.
        """
        level, rising_left, members = self.level, self.rising_left, self.members
        freezing: list[tuple[int, list[int], float]] = []
        total = 0.0
        for g in groups:
            if rising_left[g]:
                js = members[g]
                if rising_left[g] == len(js):
                    weight = self.full_weight[g]
                else:
                    js = [j for j in js if level[j] < 0.0]
                    weight = sum(map(self.weights.__getitem__, js))
                freezing.append((g, js, weight))
                total += weight
        t = min(ceiling, max(0.0, left / total))
        frozen = 0
        for g, js, weight in freezing:
            rising_left[g] = 0
            self.rising_weight[g] = 0.0
            self.used[g] += weight * t
            frozen += len(js)
            for j in js:
                level[j] = t
        return frozen

    def _settle(self) -> None:
        """Last line of defence: lower the shares above the minimum on any constraint whose booking overshot.

        The sweep books exactly what it gives (to an ulp or two, which the guard absorbs), so this finds nothing
        unless the running per-group weights lost a small weight to rounding beside one many orders of magnitude
        larger, and a cap freeze slipped past a binding level. Each constraint is checked once; lowering a request
        only ever helps its other constraints.
        """
        used, room = self.used, self.room
        for k, groups in enumerate(self.groups_on_key):
            total = sum(map(used.__getitem__, groups))
            over = total - room[k]
            if total > 0.0 and over > 4 * _ULP * (total + abs(room[k])):
                keep = max(0.0, 1.0 - over / total) * (1.0 - 1024 * _ULP)
                for g in groups:
                    used[g] *= keep
                    for j in self.members.get(g, ()):
                        self.level[j] *= keep
