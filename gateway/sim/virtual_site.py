"""A whole site in virtual time: chargers, cars, faults and limit changes, run against a sharing policy.

This is where a policy (the real controller, or a baseline it is compared with) meets physics without sockets or
a clock, so a twelve-hour evening runs in seconds and every run is exactly repeatable. It is pure: the only time
is the virtual one, advanced in ticks of ``SiteSetup.tick_s``.

What is simulated, and why it matters for sharing:

* each charger is a small in-memory device: a setpoint, a programmed fail-safe current and a communication
  watchdog. Any successful exchange (a poll or a write) restarts the watchdog. A charger that is unreachable for
  longer than its ``comm_timeout_s`` replaces its setpoint with its fail-safe current and keeps it until it is
  written again (as Alfen, KEBA and Heidelberg units do); one without a fail-safe keeps its last setpoint;
* each charger holds at most one car at a time, from its queue of visits (``drivers.sim.vehicle.Vehicle``, used
  as is): the car follows a new offer only after its lag, which is what makes moving current between chargers
  risky;
* a write reaches a reachable charger at once; an unreachable one neither answers polls nor takes writes.

Accounting, per (circuit node, site phase), integrated exactly between the instants at which a car's current
changes (lags need not be whole ticks):

* ``over_limit_amp_seconds``: the integral of ``max(0, physical current − limit)``. When a limit is *lowered*,
  the lower value is held against the site only ``LIMIT_DROP_GRACE_S`` later: no policy can make a car obey
  faster than IEC 61851-1 lets it (5 s). Likewise what chargers that cannot be commanded draw (unreachable, or
  answering again for less than that same grace) is never counted against the policy: if a limit falls below
  it, only the commanded chargers' share above the limit counts. ``over_limit_strict_amp_seconds`` is the
  integral against the limit from the very instant it changed, with no exemption, so nothing is hidden;
* energy per car, completion time per car (arrival until its target state of charge; a car that leaves or is
  still charging at the end counts its whole stay and is reported unfinished), and the peak per site phase.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from drivers.model import ChargerReading, Iec61851State
from drivers.sim.vehicle import Vehicle, VehicleSpec
from gateway.core.limits import SITE_NODE

PhaseLimits = tuple[float, float, float]
"""A limit per site phase L1, L2, L3."""

LIMIT_DROP_GRACE_S = 5.0
"""How long after a limit is lowered the old value still counts for the over-limit integral: the 5 s a car may
take to follow a lower offer (IEC 61851-1). The policy sees the new limit in the very tick it changes."""

_PHASE_NAMES = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True)
class SiteCharger:
    """One charger as installed: where it sits electrically, what it can do, and who will park at it."""

    id: str
    nodes: tuple[str, ...]
    """Its circuit and every circuit above it, ending with ``"site"``."""
    site_phases: tuple[int, ...]
    """Site phase (0..2) of the charger's L1, L2, L3; one element for a single-phase charger."""
    max_current_a: float
    has_failsafe: bool = True
    comm_timeout_s: float = 30.0
    visits: tuple[VehicleSpec, ...] = ()
    """Cars in order of arrival; each leaves (``departure_s``) before the next arrives."""


@dataclass(frozen=True, slots=True)
class Outage:
    """The charger answers nothing from ``start_s`` until ``end_s``."""

    charger_id: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class LimitChange:
    """At ``at_s`` the limit of ``node`` becomes ``limits_a`` (a BMS or operator lowering or raising it)."""

    at_s: float
    node: str
    limits_a: PhaseLimits


@dataclass(frozen=True, slots=True)
class SiteSetup:
    """Everything one run needs, fixed up front so runs are repeatable."""

    name: str
    chargers: tuple[SiteCharger, ...]
    node_limits_a: Mapping[str, PhaseLimits]
    """The limit per node and site phase at time 0; must name every node the chargers use."""
    duration_s: float
    voltage_v: float = 230.0
    """Phase voltage (240 for a split-phase leg); cars take the site's voltage."""
    outages: tuple[Outage, ...] = ()
    limit_changes: tuple[LimitChange, ...] = ()
    tick_s: float = 1.0
    description: str = ""
    needs_known: bool = False
    """Whether a policy may be told each car's departure and energy wanted (as a driver or a fleet schedule would
    tell the gateway); the car's physics is the same either way."""

    def __post_init__(self) -> None:
        _check_setup(self)


def _check_setup(setup: SiteSetup) -> None:
    problems: list[str] = []
    if not setup.duration_s > 0 or not setup.tick_s > 0 or not setup.voltage_v > 0:
        problems.append("duration_s, tick_s and voltage_v must be > 0")
    if SITE_NODE not in setup.node_limits_a:
        problems.append('node_limits_a must include "site"')
    for node, limits in setup.node_limits_a.items():
        if len(limits) != 3 or any(not math.isfinite(x) or x < 0 for x in limits):
            problems.append(f"node {node!r}: need three finite limits >= 0")
    ids: set[str] = set()
    for ch in setup.chargers:
        if ch.id in ids:
            problems.append(f"duplicate charger id {ch.id!r}")
        ids.add(ch.id)
        if not ch.nodes or ch.nodes[-1] != SITE_NODE or any(n not in setup.node_limits_a for n in ch.nodes):
            problems.append(f"{ch.id}: nodes must be known circuits ending with 'site'")
        if len(ch.site_phases) not in (1, 3) or len(set(ch.site_phases)) != len(ch.site_phases) \
                or any(p not in (0, 1, 2) for p in ch.site_phases):
            problems.append(f"{ch.id}: site_phases must be one phase or a permutation of 0, 1, 2")
        if ch.max_current_a <= 0 or ch.comm_timeout_s <= 0:
            problems.append(f"{ch.id}: max_current_a and comm_timeout_s must be > 0")
        previous_departure: float | None = 0.0
        for visit in ch.visits:
            if visit.lag_s <= 0:
                problems.append(f"{ch.id}/{visit.name}: lag_s must be > 0 (IEC 61851-1: up to 5 s)")
            if previous_departure is None or visit.arrival_s < previous_departure:
                problems.append(f"{ch.id}/{visit.name}: arrives before the previous car has left")
            previous_departure = visit.departure_s
    for outage in setup.outages:
        if outage.charger_id not in ids or not outage.end_s > outage.start_s:
            problems.append(f"outage {outage}: unknown charger or empty interval")
    for change in setup.limit_changes:
        if change.node not in setup.node_limits_a or any(not math.isfinite(x) or x < 0 for x in change.limits_a):
            problems.append(f"limit change {change}: unknown node or bad limits")
    if problems:
        raise ValueError(f"site {setup.name!r}: " + "; ".join(problems))


class ChargerBus(Protocol):
    """What a policy can do to the chargers; both return False when the charger did not take the write."""

    def write_current(self, charger_id: str, current_a: float) -> bool: ...

    def write_failsafe(self, charger_id: str, current_a: float) -> bool: ...


class Policy(Protocol):
    """Asked once per tick with every charger's poll (``None``: it did not answer) and the limits in force."""

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None: ...


@dataclass(frozen=True, slots=True)
class CarResult:
    name: str
    charger_id: str
    arrival_s: float
    energy_wh: float
    completion_s: float
    """From arrival until the target state of charge; for an unfinished car, its whole stay within the run."""
    finished: bool
    waited_s: float = 0.0
    """From arrival until it first drew current (0 for a car that needed nothing); its whole stay within the run
    if it never did. What a first-come-first-served policy makes a late arrival pay."""


@dataclass(frozen=True, slots=True)
class RunResult:
    duration_s: float
    cars: tuple[CarResult, ...]
    over_limit_amp_seconds: float
    over_limit_strict_amp_seconds: float
    """Against the limit from the very instant it changed (no ``LIMIT_DROP_GRACE_S``)."""
    over_limit_by_constraint: Mapping[str, float]
    """The graced integral per "node/L1" constraint that was ever exceeded."""
    peak_a: PhaseLimits
    """Highest physical current per site phase at the site node."""
    trace_keys: tuple[str, ...] = ()
    trace: tuple[tuple[float, ...], ...] = ()
    """Per tick, the highest physical current within the tick on each ``trace_keys`` constraint."""

    @property
    def energy_kwh(self) -> float:
        return sum(c.energy_wh for c in self.cars) / 1000.0

    @property
    def unfinished(self) -> int:
        return sum(1 for c in self.cars if not c.finished)

    @property
    def mean_completion_h(self) -> float:
        return sum(c.completion_s for c in self.cars) / len(self.cars) / 3600.0 if self.cars else 0.0

    @property
    def longest_wait_h(self) -> float:
        return max((c.waited_s for c in self.cars), default=0.0) / 3600.0


def run_site(setup: SiteSetup, policy: Policy) -> RunResult:
    """Run ``policy`` on ``setup`` from 0 to ``duration_s`` and account for what physically happened."""
    return _Run(setup).run(policy)


@dataclass(slots=True)
class _SimCharger:
    spec: SiteCharger
    queue: deque[VehicleSpec]
    setpoint_a: float = 0.0
    failsafe_a: float = 0.0
    last_comm_s: float = 0.0
    reachable: bool = True
    rejoined_s: float = -math.inf
    vehicle: Vehicle | None = None
    keys: list[list[int]] = field(default_factory=list)
    """Per charger phase (L1, L2, L3): the constraint indices its current counts against."""
    completion_s: float | None = None
    first_draw_s: float | None = None
    energy_before_wh: float = 0.0
    """Energy of earlier sessions, for the lifetime register."""
    settles_at_s: float = 0.0
    """When the car will have followed the last offer; until then its current may change."""
    reading: ChargerReading | None = None
    reading_key: tuple[object, ...] = ()
    """What ``reading`` was made from: an unchanged charger answers with the same reading (it is immutable)."""


class _Run:
    """The mutable state of one run; also the ``ChargerBus`` handed to the policy."""

    def __init__(self, setup: SiteSetup) -> None:
        self.setup = setup
        self.now = 0.0
        nodes = list(setup.node_limits_a)
        self.keys = [(node, phase) for node in nodes for phase in range(3)]
        self.key_index = {key: i for i, key in enumerate(self.keys)}
        self.site_keys = [self.key_index[(SITE_NODE, p)] for p in range(3)]
        self.limits: dict[str, PhaseLimits] = {n: (v[0], v[1], v[2]) for n, v in setup.node_limits_a.items()}
        self.strict_lim = self._flat_limits()
        self.acc_lim = list(self.strict_lim)
        self.recent_drops: list[tuple[float, list[float]]] = []
        self.chargers = {c.id: _SimCharger(c, deque(sorted(c.visits, key=lambda v: v.arrival_s)))
                         for c in setup.chargers}
        self.effects: list[float] = []  # heap of instants at which some car's current may change
        self.cars: list[CarResult] = []
        self.over = 0.0
        self.over_strict = 0.0
        self.over_by_key = [0.0] * len(self.keys)
        self.peak = [0.0, 0.0, 0.0]
        self.trace: list[tuple[float, ...]] = []

    def _flat_limits(self) -> list[float]:
        return [self.limits[node][phase] for node, phase in self.keys]

    # -- the bus the policy writes through ----------------------------------------------------------------------
    def write_current(self, charger_id: str, current_a: float) -> bool:
        ch = self.chargers[charger_id]
        if not ch.reachable or not _acceptable(current_a, ch.spec.max_current_a):
            return False
        ch.last_comm_s = self.now
        if current_a != ch.setpoint_a:
            ch.setpoint_a = current_a
            self._offer(ch)
        return True

    def write_failsafe(self, charger_id: str, current_a: float) -> bool:
        ch = self.chargers[charger_id]
        if not ch.reachable or not ch.spec.has_failsafe or not _acceptable(current_a, ch.spec.max_current_a):
            return False
        ch.last_comm_s = self.now
        ch.failsafe_a = current_a
        return True

    def _offer(self, ch: _SimCharger) -> None:
        if ch.vehicle is not None:
            ch.vehicle.offer(ch.setpoint_a, self.now)
            ch.settles_at_s = self.now + ch.vehicle.spec.lag_s
            heapq.heappush(self.effects, ch.settles_at_s)

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self, policy: Policy) -> RunResult:
        setup = self.setup
        events = sorted([(o.start_s, 0, o.charger_id, False) for o in setup.outages]
                        + [(o.end_s, 0, o.charger_id, True) for o in setup.outages], key=lambda e: e[0])
        changes = sorted(setup.limit_changes, key=lambda c: c.at_s)
        ticks = math.ceil(setup.duration_s / setup.tick_s - 1e-9)
        for n in range(ticks):
            now = self.now = n * setup.tick_s
            while events and events[0][0] <= now:
                at, _, charger_id, reachable = events.pop(0)
                self.chargers[charger_id].reachable = reachable
                if reachable:
                    self.chargers[charger_id].rejoined_s = at
            while changes and changes[0].at_s <= now:
                self._change_limit(changes.pop(0))
            self._update_accounting_limits(now)
            for ch in self.chargers.values():
                self._plug(ch, now)
                self._watchdog(ch, now)
            observations = {cid: self._poll(ch, now) for cid, ch in self.chargers.items()}
            policy.step(now, observations, dict(self.limits), self)
            self._integrate(now, min(now + setup.tick_s, setup.duration_s))
        for ch in self.chargers.values():
            if ch.vehicle is not None:
                self._unplug(ch, setup.duration_s)
        return RunResult(
            duration_s=setup.duration_s, cars=tuple(self.cars), over_limit_amp_seconds=self.over,
            over_limit_strict_amp_seconds=self.over_strict,
            over_limit_by_constraint={_key_name(self.keys[i]): v for i, v in enumerate(self.over_by_key) if v > 0},
            peak_a=(self.peak[0], self.peak[1], self.peak[2]),
            trace_keys=tuple(_key_name(k) for k in self.keys), trace=tuple(self.trace))

    def _change_limit(self, change: LimitChange) -> None:
        before = self._flat_limits()
        self.limits[change.node] = change.limits_a
        self.strict_lim = self._flat_limits()
        if any(new < old for new, old in zip(self.strict_lim, before, strict=True)):
            self.recent_drops.append((change.at_s, before))

    def _update_accounting_limits(self, now: float) -> None:
        """The accounting limit is the highest limit in force at any time in the last ``LIMIT_DROP_GRACE_S``."""
        self.recent_drops = [(t, lim) for t, lim in self.recent_drops if t + LIMIT_DROP_GRACE_S > now]
        self.acc_lim = list(self.strict_lim)
        for _, before in self.recent_drops:
            self.acc_lim = [max(a, b) for a, b in zip(self.acc_lim, before, strict=True)]

    def _plug(self, ch: _SimCharger, now: float) -> None:
        """Let the present car leave once its departure has passed, then plug in the next one that has arrived."""
        if ch.vehicle is not None and not ch.vehicle.present(now):
            self._unplug(ch, now)
        if ch.vehicle is None and ch.queue and ch.queue[0].arrival_s <= now:
            spec = ch.queue.popleft()
            wired = len(ch.spec.site_phases)
            later = None if spec.switches_to_phases is None else min(spec.switches_to_phases, wired)
            vehicle = Vehicle(replace(spec, phases=min(spec.phases, wired), switches_to_phases=later,
                                      voltage_v=self.setup.voltage_v))
            ch.vehicle = vehicle
            ch.completion_s = 0.0 if vehicle.full else None
            ch.first_draw_s = now if vehicle.full else None
            ch.keys = [[self.key_index[(node, site_phase)] for node in ch.spec.nodes]
                       for site_phase in ch.spec.site_phases]
            self._offer(ch)
            for instant in (spec.departure_s, vehicle.switch_at_s):
                if instant is not None:
                    heapq.heappush(self.effects, instant)

    def _unplug(self, ch: _SimCharger, now: float) -> None:
        vehicle = ch.vehicle
        assert vehicle is not None
        vehicle.advance(now)
        end = now if vehicle.spec.departure_s is None else min(now, vehicle.spec.departure_s)
        finished = ch.completion_s is not None
        self.cars.append(CarResult(
            name=vehicle.spec.name, charger_id=ch.spec.id, arrival_s=vehicle.spec.arrival_s,
            energy_wh=vehicle.energy_wh, completion_s=ch.completion_s if ch.completion_s is not None
            else end - vehicle.spec.arrival_s, finished=finished,
            waited_s=(ch.first_draw_s if ch.first_draw_s is not None else end) - vehicle.spec.arrival_s))
        ch.energy_before_wh += vehicle.energy_wh
        ch.vehicle = None
        ch.keys = []

    def _watchdog(self, ch: _SimCharger, now: float) -> None:
        if ch.reachable or not ch.spec.has_failsafe or now - ch.last_comm_s < ch.spec.comm_timeout_s:
            return
        if ch.setpoint_a != ch.failsafe_a:
            ch.setpoint_a = ch.failsafe_a
            self._offer(ch)

    def _poll(self, ch: _SimCharger, now: float) -> ChargerReading | None:
        if not ch.reachable:
            return None
        ch.last_comm_s = now
        vehicle = ch.vehicle
        if vehicle is None:
            key: tuple[object, ...] = (None, ch.setpoint_a, ch.energy_before_wh)
        else:
            key = (vehicle, vehicle.present(now), vehicle.drawn_a, ch.setpoint_a, vehicle.energy_wh)
        if ch.reading is not None and key == ch.reading_key:
            return ch.reading
        volts = self.setup.voltage_v
        wired = len(ch.spec.site_phases)
        voltage = (volts, volts if wired == 3 else None, volts if wired == 3 else None)
        if vehicle is None:
            reading = ChargerReading(state=Iec61851State.A, current_a=(0.0, 0.0, 0.0), voltage_v=voltage,
                                     power_w=0.0, energy_wh=ch.energy_before_wh, session_energy_wh=0.0,
                                     setpoint_a=ch.setpoint_a, enabled=True)
        else:
            currents = vehicle.phase_currents_a()
            reading = ChargerReading(state=vehicle.state(now), current_a=currents, voltage_v=voltage,
                                     power_w=sum(currents) * volts, energy_wh=ch.energy_before_wh + vehicle.energy_wh,
                                     session_energy_wh=vehicle.energy_wh, setpoint_a=ch.setpoint_a, enabled=True)
        ch.reading, ch.reading_key = reading, key
        return reading

    def _integrate(self, start: float, end: float) -> None:
        """Advance every car to ``end``, accounting piecewise between the instants at which a current changes."""
        instants: list[float] = []
        while self.effects and self.effects[0] < end:
            instant = heapq.heappop(self.effects)
            if instant > start and (not instants or instant > instants[-1]):
                instants.append(instant)
        instants.append(end)
        # A car that draws nothing and has no offer still to follow cannot change: leave it alone (speed).
        plugged = [ch for ch in self.chargers.values() if ch.vehicle is not None
                   and (ch.vehicle.drawn_a > 0 or ch.settles_at_s >= start)]
        tick_max = [0.0] * len(self.keys)
        a = start
        for b in instants:
            currents = [0.0] * len(self.keys)
            uncommanded = [0.0] * len(self.keys)
            for ch in plugged:
                if ch.vehicle is None or ch.vehicle.drawn_a <= 0:
                    continue
                if ch.first_draw_s is None:
                    ch.first_draw_s = a
                free = not ch.reachable or a - ch.rejoined_s < LIMIT_DROP_GRACE_S
                for drawn, keys in zip(ch.vehicle.phase_currents_a(), ch.keys, strict=False):
                    for k in keys if drawn > 0 else ():
                        currents[k] += drawn
                        if free:
                            uncommanded[k] += drawn
            self._account(currents, uncommanded, b - a, tick_max)
            for ch in plugged:
                if ch.vehicle is not None:
                    ch.vehicle.advance(b)
                    if ch.completion_s is None and ch.vehicle.full:
                        ch.completion_s = b - ch.vehicle.spec.arrival_s
            a = b
        self.trace.append(tuple(tick_max))

    def _account(self, currents: Sequence[float], uncommanded: Sequence[float], dt: float,
                 tick_max: list[float]) -> None:
        for k, current in enumerate(currents):
            if current > tick_max[k]:
                tick_max[k] = current
            over = current - max(self.acc_lim[k], uncommanded[k])
            if over > 0:
                self.over += over * dt
                self.over_by_key[k] += over * dt
            strict = current - self.strict_lim[k]
            if strict > 0:
                self.over_strict += strict * dt
        for phase, k in enumerate(self.site_keys):
            self.peak[phase] = max(self.peak[phase], currents[k])


def _acceptable(current_a: float, max_current_a: float) -> bool:
    """What a device accepts: a finite current from 0 to its maximum (anything else it answers with an error)."""
    return math.isfinite(current_a) and 0.0 <= current_a <= max_current_a


def _key_name(key: tuple[str, int]) -> str:
    return f"{key[0]}/{_PHASE_NAMES[key[1]]}"
