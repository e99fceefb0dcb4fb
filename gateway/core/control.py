"""The power-sharing controller: from what the chargers report to the setpoints that are safe to send now.

Pure and synchronous. One control round (``gateway.core.round``, driven by the supervisor, the virtual-time site
and the tests alike) calls ``observe`` with the latest observation of each charger, ``decide`` with the limits in
force, sends the returned commands in order, and reports each outcome with ``write_done``. The same code therefore
runs in real time and in the simulator.

The safety invariant (ARCHITECTURE.md) is enforced by *booking*: every charger is booked, on each site phase, at

    max(current it may draw now, current it draws now)

where "may draw" is the last acknowledged setpoint (raised to any write in flight or any write that failed: the
device may have applied it), and, for a charger that stopped answering, what it may still draw: the higher of its
last setpoint and its programmed fail-safe current (its maximum if it has no fail-safe feature, or we do not know
what is programmed). The higher of the two, for as long as it is away, because after its own timeout it falls
back to the fail-safe, and some devices resume their last setpoint the instant they hear the gateway again, before
the gateway can send anything. A decrease is always sent at once. An increase is granted only into headroom that
exists *now* against those bookings, so current moves from A to B only after A's car has really come down; until
then B waits a step or two.

A car seen drawing on fewer phases than its charger is wired for (for ``PHASE_EVIDENCE_S``) is booked at its
setpoint on those phases only, so other chargers can use the rest. Its other phases stay booked at up to the
charger's minimum current: real cars switch from one phase to three mid-session, and one that does draws its
setpoint on phases given to others until the next poll (which books every wired phase again at once) plus the
time the others take to come down. The reserve bounds that overload per phase to the setpoint less the minimum
current; only booking every wired phase at the full setpoint would prevent it, and that gives up what learning
the phases is for.

What each car should get in the end state is decided by ``gateway.core.allocation``; this module feeds it:
who asks for current (plugged in, reachable, enabled), each car's cap (nameplate, breaker, runtime caps, and what
the car has shown it takes), the room on each node and phase net of chargers we cannot command, and a rank that
encodes priority and fair rotation when there is not enough for 6 A each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from drivers.model import ChargerReading
from gateway.core.allocation import NodePhase, Request
from gateway.core.deadlines import Need, Urgency, allocate_with_deadlines, urgency
from gateway.core.invariant import Load, PerPhase, on_phases, room, violations

DEMAND_GAP_A = 1.0
"""A car drawing at least this much less than offered is taking less than it is offered."""
PHASE_ACTIVE_A = 1.0
"""A phase carrying at least this current is a phase the car draws on."""
PHASE_EVIDENCE_S = 20.0
"""How long a car must draw on fewer phases than wired before it is booked on those phases only."""
DOWN_TOLERANCE_A = 0.5
"""A car within this of its new, lower setpoint has come down."""
FOLLOW_TOLERANCE_A = 1.0
"""Measured current above the setpoint by more than this, for longer than the ramp-down timeout, is not following."""
_EPS = 1e-6
_FLOAT_NOISE_A = 1e-9
"""What float sums of a few currents may be off by; far below anything a charger or a breaker can tell apart."""


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """What the controller needs to know about one charger, from the site config and its profile."""

    id: str
    nodes: tuple[str, ...]
    """The charger's circuit and every node above it, up to and including the site."""
    site_phases: tuple[int, ...]
    """Site phase (0..2) of the charger's L1, L2, L3; one element for a 1-phase charger."""
    max_current_a: float
    """The unit's cap: least of nameplate and breaker limit."""
    min_current_a: float = 6.0
    resolution_a: float = 1.0
    has_failsafe: bool = True
    priority: int = 0
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Observation:
    """One poll of one charger: a reading, or why there is none."""

    reading: ChargerReading | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force at this step, already combined from every source."""

    node_limits_a: Mapping[str, PerPhase]
    """Per circuit node (including "site"), per site phase."""
    enabled: bool = True
    unit_caps_a: Mapping[str, float] = field(default_factory=dict)
    """Runtime caps per charger (installer's unit limit, OCPP connector limits)."""


@dataclass(frozen=True, slots=True)
class SetpointCommand:
    charger_id: str
    current_a: float


@dataclass(frozen=True, slots=True)
class UnitView:
    """The controller's view of one charger, for the read model."""

    id: str
    reachable: bool
    reason: str | None
    plugged: bool
    setpoint_a: float | None
    """Last acknowledged setpoint (None until known)."""
    target_a: float
    booked_a: PerPhase
    """Booked current per site phase (what the safety invariant counts)."""
    measured_a: PerPhase
    """Measured current per site phase."""
    waiting: bool
    demand_cap_a: float | None
    car_phases: tuple[int, ...] | None
    """Site phases the car was learned to draw on (None: not learned, booked on all wired phases)."""
    failsafe_a: float | None


@dataclass(slots=True)
class _Unit:
    """Mutable state the controller keeps per charger between steps."""

    spec: ChargerSpec
    acked_a: float | None = None
    pending_a: float | None = None
    failed_high_a: float | None = None
    decrease_from_a: float | None = None
    """Until a decrease is confirmed, the car may still draw up to this (it may even be ramping up to it)."""
    decrease_at_s: float = 0.0
    seen_above: bool = False
    resync: bool = False
    """The device may not be at the setpoint we believe (it came back, or its read-back differs): re-send."""
    failsafe_acked_a: float | None = None
    reachable: bool = False
    ever_seen: bool = False
    reason: str | None = "not polled yet"
    measured: PerPhase = (0.0, 0.0, 0.0)
    """Per site phase."""
    plugged: bool = False
    target_a: float = 0.0
    session_wh: float = 0.0
    """Energy delivered in the present session (for a ``Need``)."""
    volts: float = 230.0
    plugged_s: float = 0.0
    # learning, per session
    car_phases: tuple[int, ...] | None = None
    phase_evidence_since: float | None = None
    phase_evidence: tuple[int, ...] = ()
    under_since: float | None = None
    under_peak_a: float = 0.0
    demand_cap_a: float | None = None
    capped_since: float | None = None
    over_since: float | None = None
    not_following: bool = False
    # rotation
    on_since: float | None = None
    waiting_since: float | None = None
    switched_off_s: float | None = None

    def reset_session(self) -> None:
        self.car_phases = None
        self.phase_evidence_since = None
        self.phase_evidence = ()
        self.under_since = None
        self.under_peak_a = 0.0
        self.demand_cap_a = None
        self.capped_since = None
        self.waiting_since = None
        self.switched_off_s = None

    @property
    def commanded_a(self) -> float | None:
        """What the charger has been told most recently (in flight or acknowledged)."""
        return self.pending_a if self.pending_a is not None else self.acked_a

    @property
    def fixed(self) -> bool:
        """Its draw is not ours to change: unreachable, or its car ignores its setpoint."""
        return not self.reachable or self.not_following


class Tuning(Protocol):
    """The controller's knobs, read-only; the site file's ``control:`` section validates and defaults them."""

    @property
    def min_dwell_s(self) -> float: ...
    @property
    def rotation_period_s(self) -> float: ...
    @property
    def hysteresis_a(self) -> float: ...
    @property
    def demand_margin_a(self) -> float: ...
    @property
    def demand_window_s(self) -> float: ...
    @property
    def probe_interval_s(self) -> float: ...
    @property
    def vehicle_response_s(self) -> float: ...
    @property
    def ramp_down_timeout_s(self) -> float: ...
    @property
    def order(self) -> str: ...


class Controller:
    """Holds per-charger state between steps; every decision is a pure function of the inputs and that state."""

    def __init__(self, chargers: Sequence[ChargerSpec], settings: Tuning) -> None:
        self.settings = settings
        self._units: dict[str, _Unit] = {}
        self._needs: dict[str, Need] = {}
        self.reconfigure(chargers)

    # -- configuration ---------------------------------------------------------------------------------------
    def reconfigure(self, chargers: Sequence[ChargerSpec]) -> None:
        """Add, remove or update chargers, keeping what is known about the ones that stay."""
        units: dict[str, _Unit] = {}
        for spec in chargers:
            if spec.id in units:
                raise ValueError(f"duplicate charger id {spec.id!r}")
            unit = self._units.get(spec.id) or _Unit(spec)
            unit.spec = spec
            units[spec.id] = unit
        self._units = units

    def specs(self) -> list[ChargerSpec]:
        return [unit.spec for unit in self._units.values()]

    def has_failsafe(self, charger_id: str) -> bool:
        unit = self._units.get(charger_id)
        return unit is not None and unit.spec.has_failsafe

    def set_needs(self, needs: Mapping[str, Need]) -> None:
        """Departure and energy wanted per charger's present session (``gateway.core.deadlines``); replaces the
        previous set. A need is used only while that charger has a car plugged in."""
        self._needs = {cid: need for cid, need in needs.items()
                       if cid in self._units and (need.departure_s is not None or need.energy_wh is not None)}

    @property
    def charger_ids(self) -> list[str]:
        return list(self._units)

    # -- the step ----------------------------------------------------------------------------------------------
    def observe(self, now: float, observations: Mapping[str, Observation]) -> None:
        """Ingest one poll per charger (chargers not in ``observations`` keep what was last seen)."""
        for charger_id, obs in observations.items():
            unit = self._units.get(charger_id)
            if unit is not None:
                self._ingest(unit, obs, now)

    def decide(self, now: float, limits: Limits,
               booked: Mapping[str, Load]) -> tuple[list[SetpointCommand], list[SetpointCommand]]:
        """Decide targets and return the commands that are safe to send now: (decreases, increases).

        ``booked`` is ``bookings()`` taken after ``observe`` (the round needs them too, so they are computed once).

        The decreases (and re-sends within a charger's booking) are always safe. The increases fit headroom that
        exists against the bookings *before* any decrease is acknowledged, so they stay safe whatever the decreases'
        outcome; still, they are sent only once the decreases have been (``gateway.core.round``).
        """
        bookings = {cid: load.amps for cid, load in booked.items()}
        targets = self._targets(now, limits, bookings)
        targets = self._apply_hysteresis(targets, limits, bookings)
        for cid, unit in self._units.items():
            unit.target_a = targets[cid]
        return self._sequence(now, limits, bookings, targets)

    def bookings(self) -> dict[str, Load]:
        """Each charger's booking per site phase along its circuit path: what the safety invariant adds up."""
        return {cid: Load(u.spec.nodes, self._booking(u)) for cid, u in self._units.items()}

    def write_done(self, charger_id: str, current_a: float, ok: bool, now: float) -> None:
        """Report the outcome of a ``SetpointCommand``. A failed write leaves the higher of old and new booked."""
        unit = self._units.get(charger_id)
        if unit is None:
            return
        if unit.pending_a == current_a:
            unit.pending_a = None
        if not ok:
            old = unit.acked_a if unit.acked_a is not None else unit.spec.max_current_a
            unit.failed_high_a = max(unit.failed_high_a or 0.0, old, current_a)
            return
        was_on = unit.acked_a is not None and unit.acked_a >= unit.spec.min_current_a
        previous = unit.acked_a if unit.acked_a is not None else unit.spec.max_current_a
        if current_a < previous:
            unit.decrease_from_a = max(previous, unit.decrease_from_a or 0.0)
            unit.decrease_at_s = now
            unit.seen_above = False
        unit.acked_a = current_a
        unit.failed_high_a = None
        unit.resync = False
        is_on = current_a >= unit.spec.min_current_a
        if is_on and not was_on:
            unit.on_since = now
            unit.waiting_since = None
        elif not is_on:
            unit.on_since = None
            if was_on:
                unit.switched_off_s = now
            if unit.plugged and unit.waiting_since is None:
                unit.waiting_since = now

    def failsafe_currents(self, limits: Limits) -> dict[str, float]:
        """Each charger's fair share, to program as its fail-safe current.

        If the gateway itself dies, every charger falls back to this after its own timeout, and the sum still fits
        every node on every phase: share = node limit ÷ chargers on that node and phase, the least over the
        charger's nodes and phases, floored to its resolution, and 0 if that is below its minimum.
        """
        counts: dict[NodePhase, int] = {}
        for unit in self._units.values():
            for key in _keys(unit.spec.nodes, unit.spec.site_phases):
                counts[key] = counts.get(key, 0) + 1
        out: dict[str, float] = {}
        for cid, unit in self._units.items():
            spec = unit.spec
            share = min(max(0.0, limits.node_limits_a[node][phase]) / counts[(node, phase)]
                        for node, phase in _keys(spec.nodes, spec.site_phases))
            share = min(share, spec.max_current_a, limits.unit_caps_a.get(cid, math.inf))
            out[cid] = _floor_to(share, spec.resolution_a, spec.min_current_a)
        return out

    def failsafe_done(self, charger_id: str, current_a: float, ok: bool) -> None:
        """Report programming a fail-safe current; on failure the higher value stays booked (or unknown stays)."""
        unit = self._units.get(charger_id)
        if unit is None:
            return
        if ok:
            unit.failsafe_acked_a = current_a
        elif unit.failsafe_acked_a is not None:
            unit.failsafe_acked_a = max(unit.failsafe_acked_a, current_a)

    def views(self, now: float) -> list[UnitView]:
        """The controller's state per charger, in configuration order, for the read model."""
        out = []
        for cid, u in self._units.items():
            booked = self._booking(u)
            wants = u.plugged and u.demand_cap_a is None
            reason = u.reason if not u.reachable else None
            if u.reachable and u.not_following:
                reason = "vehicle not following its setpoint"
            out.append(UnitView(
                id=cid, reachable=u.reachable, reason=reason,
                plugged=u.plugged, setpoint_a=u.acked_a, target_a=u.target_a, booked_a=booked,
                measured_a=u.measured if u.reachable else (0.0, 0.0, 0.0),
                waiting=wants and u.reachable and (u.acked_a or 0.0) < u.spec.min_current_a,
                demand_cap_a=u.demand_cap_a, car_phases=u.car_phases, failsafe_a=u.failsafe_acked_a))
        return out

    # -- ingestion and learning ---------------------------------------------------------------------------------
    def _ingest(self, unit: _Unit, obs: Observation, now: float) -> None:
        reading = obs.reading
        if reading is None:
            unit.reachable = False
            unit.reason = obs.error or "no answer"
            return
        if not unit.reachable and unit.ever_seen:
            self._rejoin(unit, reading, now)
        unit.reachable = True
        unit.ever_seen = True
        unit.reason = None
        readback = reading.setpoint_a
        if (readback is not None and unit.acked_a is not None and unit.pending_a is None
                and abs(readback - unit.acked_a) > max(DOWN_TOLERANCE_A, unit.spec.resolution_a / 2)):
            unit.resync = True
        if unit.acked_a is None and unit.pending_a is None and reading.setpoint_a is not None:
            # After a gateway restart: book what the device says it applies, and let a running session keep its turn.
            unit.acked_a = reading.setpoint_a
            if reading.setpoint_a >= unit.spec.min_current_a:
                unit.on_since = now
        measured = [0.0, 0.0, 0.0]
        for charger_phase, site_phase in enumerate(unit.spec.site_phases):
            value = reading.current_a[charger_phase]
            if value is not None:
                measured[site_phase] += max(0.0, value)
        unit.measured = (measured[0], measured[1], measured[2])
        if reading.session_energy_wh is not None:
            unit.session_wh = reading.session_energy_wh
        volts = next((v for v in reading.voltage_v if v is not None and v > 0), None)
        if volts is not None:
            unit.volts = volts
        if reading.state is not None:
            plugged = reading.state.plugged_in
            if plugged and not unit.plugged:
                unit.reset_session()
                unit.waiting_since = now
                unit.plugged_s = now
            elif not plugged and unit.plugged:
                unit.reset_session()
            unit.plugged = plugged
        self._confirm_decrease(unit, now)
        self._learn_phases(unit, now)
        self._learn_demand(unit, now)
        self._watch_following(unit, now)

    def _rejoin(self, unit: _Unit, reading: ChargerReading, now: float) -> None:
        """A charger that answers again is at what it was booked at while away (its fail-safe, its last setpoint,
        or its maximum), unless it says otherwise; from there any increase needs real headroom. Re-send its setpoint,
        since its watchdog may have latched the fail-safe current meanwhile. A decrease acknowledged before it went
        away stays booked until ``_confirm_decrease`` sees the car come down: its car may still be ramping.
        """
        booked_as = self._may_draw(unit)
        unit.acked_a = reading.setpoint_a if reading.setpoint_a is not None else booked_as
        unit.pending_a = None
        unit.failed_high_a = None
        unit.resync = True

    def _confirm_decrease(self, unit: _Unit, now: float) -> None:
        """A decrease frees current only once the car has been seen above the new value and come down, or once the
        vehicle response time has passed: a car still ramping up to the old value may reach it after the decrease.
        """
        if unit.decrease_from_a is None or unit.acked_a is None:
            return
        if not unit.plugged:
            unit.decrease_from_a = None  # no vehicle: nothing can draw
            return
        drawn = max(unit.measured)
        if drawn > unit.acked_a + DOWN_TOLERANCE_A:
            unit.seen_above = True
        elif unit.seen_above or now - unit.decrease_at_s >= self.settings.vehicle_response_s:
            unit.decrease_from_a = None

    def _learn_phases(self, unit: _Unit, now: float) -> None:
        """Book a car only on the phases it draws on, once it has shown that for a while."""
        wired = tuple(sorted(set(unit.spec.site_phases)))
        active = tuple(p for p in wired if unit.measured[p] >= PHASE_ACTIVE_A)
        if unit.car_phases is not None and any(p not in unit.car_phases for p in active):
            unit.car_phases = None  # the car drew on a phase we had freed: book all wired phases again at once
        if not active or len(active) == len(wired):
            unit.phase_evidence_since = None
            return
        if unit.phase_evidence != active or unit.phase_evidence_since is None:
            unit.phase_evidence = active
            unit.phase_evidence_since = now
        elif now - unit.phase_evidence_since >= PHASE_EVIDENCE_S:
            unit.car_phases = active

    def _learn_demand(self, unit: _Unit, now: float) -> None:
        """Book a car that takes clearly less than it is offered at what it takes, plus a margin."""
        s = self.settings
        offered = unit.acked_a
        drawn = max(unit.measured)
        if not unit.plugged or offered is None or offered < unit.spec.min_current_a:
            unit.under_since = None
            return
        if unit.demand_cap_a is not None and drawn >= unit.demand_cap_a - s.demand_margin_a / 2:
            unit.demand_cap_a = None  # it takes all it is offered: it may want more
            unit.capped_since = None
            unit.under_since = None
        if drawn < offered - DEMAND_GAP_A:
            if unit.under_since is None:
                unit.under_since, unit.under_peak_a = now, drawn
            else:
                unit.under_peak_a = max(unit.under_peak_a, drawn)
                if now - unit.under_since >= s.demand_window_s:
                    cap = unit.under_peak_a + s.demand_margin_a
                    if unit.demand_cap_a is None or cap < unit.demand_cap_a:
                        unit.demand_cap_a = cap
                        unit.capped_since = now
        else:
            unit.under_since = None

    def _watch_following(self, unit: _Unit, now: float) -> None:
        """A car drawing above its setpoint for longer than a car may take to ramp down is not following."""
        limit = unit.acked_a if unit.pending_a is None else max(unit.acked_a or 0.0, unit.pending_a)
        if limit is not None and max(unit.measured) > limit + FOLLOW_TOLERANCE_A:
            if unit.over_since is None:
                unit.over_since = now
            unit.not_following = now - unit.over_since >= self.settings.ramp_down_timeout_s
        else:
            unit.over_since = None
            unit.not_following = False

    # -- booking -------------------------------------------------------------------------------------------------
    def _may_draw(self, unit: _Unit) -> float:
        spec = unit.spec
        held = unit.acked_a if unit.acked_a is not None else spec.max_current_a
        for extra in (unit.pending_a, unit.failed_high_a, unit.decrease_from_a):
            if extra is not None:
                held = max(held, extra)
        if unit.reachable:
            return held
        if not spec.has_failsafe or unit.failsafe_acked_a is None:
            return spec.max_current_a
        return max(held, unit.failsafe_acked_a)

    def _booking(self, unit: _Unit) -> PerPhase:
        """Per site phase: max(what it may draw, what it draws)."""
        may = self._may_draw(unit)
        on_phases = unit.car_phases if unit.reachable and unit.car_phases is not None else unit.spec.site_phases
        booked = [0.0, 0.0, 0.0]
        for p in set(unit.spec.site_phases):
            measured = unit.measured[p] if unit.reachable else 0.0
            booked[p] = max(may if p in on_phases else 0.0, measured)
        return (booked[0], booked[1], booked[2])

    # -- targets -------------------------------------------------------------------------------------------------
    def _targets(self, now: float, limits: Limits,
                 bookings: Mapping[str, PerPhase]) -> dict[str, float]:
        targets = {cid: 0.0 for cid in self._units}
        fixed = self._fixed_loads(bookings)
        capacity = room(limits.node_limits_a, fixed)
        requests: list[Request] = []
        urgent: dict[str, Urgency] = {}
        for cid, unit in self._units.items():
            spec = unit.spec
            if unit.fixed:
                continue
            if not (limits.enabled and unit.reachable and unit.plugged):
                continue
            learned = unit.demand_cap_a if unit.demand_cap_a is not None else math.inf
            cap = min(spec.max_current_a, limits.unit_caps_a.get(cid, math.inf), learned)
            if cap < spec.min_current_a:
                continue
            requests.append(Request(charger_id=cid, nodes=spec.nodes, phases=self._booked_phases(unit), cap_a=cap,
                                    min_a=spec.min_current_a, weight=spec.weight, rank=self._rank(unit, now)))
            need = self._needs.get(cid)
            if need is not None:
                u = urgency(need, unit.session_wh, unit.volts, len(self._booked_phases(unit)), cap, now)
                if u is not None:
                    urgent[cid] = u
        order = ({r.charger_id: self._order_key(r.charger_id) for r in requests}
                 if self.settings.order == "shortest_first" else None)
        grants = allocate_with_deadlines(requests, capacity, urgent, order)
        for cid, amps in grants.items():
            spec = self._units[cid].spec
            targets[cid] = _floor_to(amps, spec.resolution_a, spec.min_current_a)
        self._probe(now, limits, fixed, targets)
        top_up(requests, capacity, grants, targets, {cid: u.spec.resolution_a for cid, u in self._units.items()})
        return targets

    def _fixed_loads(self, bookings: Mapping[str, PerPhase]) -> list[Load]:
        """The bookings of chargers whose draw is not ours to change: they come off every limit first."""
        return [Load(u.spec.nodes, bookings[cid]) for cid, u in self._units.items() if u.fixed]

    def _target_loads(self, targets: Mapping[str, float]) -> list[Load]:
        """The targets of the chargers we command, on the phases each is booked on."""
        return [Load(u.spec.nodes, on_phases(targets[cid], self._booked_phases(u)))
                for cid, u in self._units.items() if not u.fixed and targets[cid] > 0]

    def _probe(self, now: float, limits: Limits, fixed: Sequence[Load], targets: Mapping[str, float]) -> None:
        """Raise a learned cap into current nobody else was given, so probing never takes from other cars.

        A car capped for ``probe_interval_s`` has its cap raised by the spare room on its nodes and phases (if that
        room is at least its resolution, or its minimum for a car that took nothing); if it then takes what it is
        offered, the cap is lifted altogether (``_learn_demand``), otherwise it is learned again.
        """
        spare = room(limits.node_limits_a, [*fixed, *self._target_loads(targets)])
        for cid, unit in self._units.items():
            if (unit.demand_cap_a is None or unit.capped_since is None or not unit.plugged or unit.fixed
                    or not limits.enabled or now - unit.capped_since < self.settings.probe_interval_s):
                continue
            if targets[cid] > 0.0 and targets[cid] + unit.spec.resolution_a <= unit.demand_cap_a + _FLOAT_NOISE_A:
                continue  # its share, not its cap, holds it back: probing would only raise a cap nothing uses
            free = min(spare[key] for key in _keys(unit.spec.nodes, self._booked_phases(unit)))
            needed = unit.spec.min_current_a if targets[cid] == 0 else unit.spec.resolution_a
            if free >= needed:
                unit.demand_cap_a = targets[cid] + free
                unit.capped_since = now
                unit.under_since = None

    def _rank(self, unit: _Unit, now: float) -> tuple[float, ...]:
        """Admission order under scarcity: priority, then protected chargers, then waiting cars, then the rest.

        A car that is charging keeps its turn for ``max(min_dwell_s, rotation_period_s)``; after that a waiting car
        (longest waiting first) goes before it, and among chargers past their turn the one on longest yields first.
        A car the gateway switched off stays behind all of those for ``min_dwell_s``, so nobody is cycled; it is
        only switched back on sooner if there is room left over. A car learned as "not taking current" goes last.
        """
        s = self.settings
        turn = max(s.min_dwell_s, s.rotation_period_s)
        idle = 1.0 if unit.demand_cap_a is not None and unit.demand_cap_a < unit.spec.min_current_a else 0.0
        if unit.on_since is not None and (unit.acked_a or 0.0) >= unit.spec.min_current_a:
            if now - unit.on_since < turn:
                return (-unit.spec.priority, idle, 0.0, unit.on_since)
            return (-unit.spec.priority, idle, 2.0, -unit.on_since)
        if unit.switched_off_s is not None and now - unit.switched_off_s < s.min_dwell_s:
            return (-unit.spec.priority, idle, 3.0, unit.switched_off_s)
        return (-unit.spec.priority, idle, 1.0, unit.waiting_since if unit.waiting_since is not None else now)

    def _order_key(self, charger_id: str) -> tuple[float, float, float]:
        """For ``shortest_first``: the energy still wanted where known (those first), else the plug-in time.

        A car learned to take less than it is offered that draws nothing now (it is full, or its probe is under
        way) goes last: first in line, a probe's raised cap would hand it everything, and the car behind it
        would be switched off for a car that takes nothing.
        """
        unit, need = self._units[charger_id], self._needs.get(charger_id)
        idle = 1.0 if unit.demand_cap_a is not None and max(unit.measured) < unit.spec.min_current_a else 0.0
        if need is not None and need.energy_wh is not None:
            return (idle, 0.0, need.energy_wh - unit.session_wh)
        return (idle, 1.0, unit.plugged_s)

    def _apply_hysteresis(self, targets: dict[str, float], limits: Limits,
                          bookings: Mapping[str, PerPhase]) -> dict[str, float]:
        """Skip changes smaller than a charger's resolution or the hysteresis, unless a decrease is needed."""
        out = dict(targets)
        for cid, unit in self._units.items():
            current = unit.commanded_a
            target = targets[cid]
            if current is None or target == current or current < unit.spec.min_current_a or target == 0.0:
                continue
            if abs(target - current) >= max(self.settings.hysteresis_a, unit.spec.resolution_a):
                continue
            if target > current or self._fits_with(out, cid, current, limits, bookings):
                out[cid] = current
        return out

    def _fits_with(self, targets: Mapping[str, float], charger_id: str, value: float, limits: Limits,
                   bookings: Mapping[str, PerPhase]) -> bool:
        """Would the end state still fit every node if ``charger_id`` kept ``value``?"""
        end_state = {**targets, charger_id: value}
        loads = [*self._fixed_loads(bookings), *self._target_loads(end_state)]
        return not violations(limits.node_limits_a, loads, _EPS)

    # -- sequencing ---------------------------------------------------------------------------------------------
    def _sequence(self, now: float, limits: Limits, bookings: Mapping[str, PerPhase],
                  targets: Mapping[str, float]) -> tuple[list[SetpointCommand], list[SetpointCommand]]:
        decreases: list[SetpointCommand] = []
        increases: list[tuple[tuple[float, ...], _Unit, float]] = []
        for cid, unit in self._units.items():
            if not unit.reachable or unit.pending_a is not None:
                continue
            target, current = targets[cid], unit.commanded_a
            within_booking = unit.resync and target <= self._may_draw(unit)
            if current is None or target < current or within_booking:
                decreases.append(SetpointCommand(cid, target))
                unit.pending_a = target
            elif target > current:
                increases.append((self._rank(unit, now), unit, target))
        headroom = room(limits.node_limits_a, [Load(u.spec.nodes, bookings[cid]) for cid, u in self._units.items()])
        granted: list[SetpointCommand] = []
        for _, unit, target in sorted(increases, key=lambda item: item[0]):
            amps = self._grantable(unit, target, bookings[unit.spec.id], headroom)
            if amps is None:
                continue
            for node in unit.spec.nodes:
                for phase in self._booked_phases(unit):
                    extra = max(amps, bookings[unit.spec.id][phase]) - bookings[unit.spec.id][phase]
                    headroom[(node, phase)] -= extra
            unit.pending_a = amps
            granted.append(SetpointCommand(unit.spec.id, amps))
        return decreases, granted

    def _booked_phases(self, unit: _Unit) -> tuple[int, ...]:
        return unit.car_phases if unit.car_phases is not None else tuple(sorted(set(unit.spec.site_phases)))

    def _grantable(self, unit: _Unit, target: float, booked: PerPhase,
                   headroom: Mapping[NodePhase, float]) -> float | None:
        """The largest setpoint up to ``target`` that fits existing headroom, or None if no useful increase fits.

        Headroom may be negative while cars are still coming down from a lower limit; then nothing is raised, not
        even within a charger's own booking: that booking is a car on its way down, and the plan counts on it.
        """
        spec = unit.spec
        amps = target
        for node in spec.nodes:
            for phase in self._booked_phases(unit):
                amps = min(amps, booked[phase] + headroom[(node, phase)])
        amps = _floor_to(amps, spec.resolution_a, spec.min_current_a)
        current = unit.commanded_a or 0.0
        if amps <= current:
            return None
        return amps


def top_up(requests: Sequence[Request], capacity: Mapping[NodePhase, float], grants: Mapping[str, float],
           targets: dict[str, float], steps: Mapping[str, float]) -> None:
    """Hand out, in ``targets`` (the ``grants`` rounded down to whole steps), what the rounding left unused.

    Every share is rounded down, so a node shared by n chargers may keep up to n steps unused: on a 63 A board
    shared by six cars, about 3 A all evening. A charger that was given current gets one more step where every
    node and phase it draws on still has that room after everyone's rounded share, within its cap; the largest
    part of a step lost to rounding goes first (then the usual order). Chargers given the same share get it
    together or not at all: two cars given equal shares are never given different currents (which one would
    depend on the order of the site file, not on the cars). The end state still fits everywhere; getting there
    is sequenced like any other increase.
    """
    spare = dict(capacity)
    for r in requests:
        for key in r.constraints():
            spare[key] -= targets[r.charger_id]
    groups: dict[float, list[Request]] = {}
    for r in requests:
        if targets[r.charger_id] > 0.0:
            groups.setdefault(round(grants[r.charger_id], 6), []).append(r)
    for _, group in sorted(groups.items(), key=lambda item: (targets[item[1][0].charger_id] - item[0],
                                                              item[1][0].rank)):
        need: dict[NodePhase, float] = {}
        for r in group:
            step = steps[r.charger_id]
            if step <= 0.0 or targets[r.charger_id] + step > r.cap_a + _FLOAT_NOISE_A:
                break
            for key in r.constraints():
                need[key] = need.get(key, 0.0) + step
        else:
            if all(spare[key] >= amps - _FLOAT_NOISE_A for key, amps in need.items()):
                for r in group:
                    targets[r.charger_id] += steps[r.charger_id]
                for key, amps in need.items():
                    spare[key] -= amps


def _keys(nodes: Iterable[str], phases: Iterable[int]) -> list[NodePhase]:
    phase_list = list(phases)
    return [(node, phase) for node in nodes for phase in phase_list]


def _floor_to(amps: float, resolution_a: float, min_a: float) -> float:
    """Round down to the charger's resolution (rounding down keeps every sum within its limit); 0 below minimum.

    Never up: a multiple of the resolution is kept only if it does not exceed ``amps`` by more than the noise of
    float sums (``_FLOAT_NOISE_A``), so 16 A of headroom computed as 15.999999999999996 still gives 16 A, but
    15.9999995 A gives 15 A.
    """
    if resolution_a > 0:
        steps = math.floor(amps / resolution_a)
        if (steps + 1) * resolution_a <= amps + _FLOAT_NOISE_A:
            steps += 1
        amps = round(steps * resolution_a, 9)
    return amps if amps >= min_a - _FLOAT_NOISE_A else 0.0
