"""Other load managers as benchmark policies, each modelled on its documented behaviour, with its own timing.

These are our own models of what the projects document (``/work/shared/research/anchors-load-management.md``),
not their code: each keeps the loop period, the share rule, the order under scarcity and the reaction rules that
matter for sharing, and drops everything else (PV surplus, batteries, 1p/3p switching, tariffs). They drive the
same virtual site as powershare, through the same ``Policy`` interface: every tick they see each charger's poll
and the limits in force, and decide for themselves whether this tick is one of theirs.

What the virtual site has no equivalent for is an assumption, listed in ``docs/benchmark.md``:

* the site meter: the virtual site has no house load, so a peer's "measured" load at a circuit is the sum of the
  measured currents of the chargers below it (a charger that stopped answering counts at its last reading);
* the charger's fail-safe: the peers do not program one (none of them documents doing so for these chargers), so
  a charger they lose falls back to the virtual device's default of 0 A after its timeout, or keeps its setpoint
  if it has no fail-safe; EVerest's 10 s lease is modelled as a fail-safe of 0 A (its budget expires to 0);
* the charger's maximum stands for the loadpoint's or EVSE's configured maximum current.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from drivers.model import ChargerReading
from gateway.sim.virtual_site import ChargerBus, PhaseLimits, Policy, SiteCharger, SiteSetup

MIN_CURRENT_A = 6.0
NodePhase = tuple[str, int]


def _plugged(reading: ChargerReading | None) -> bool:
    return reading is not None and reading.state is not None and reading.state.plugged_in


def _site_currents(ch: SiteCharger, reading: ChargerReading | None) -> tuple[float, float, float]:
    """Measured current per site phase of one charger (0 without a reading)."""
    out = [0.0, 0.0, 0.0]
    if reading is not None:
        for j, phase in enumerate(ch.site_phases):
            value = reading.current_a[j]
            if value is not None:
                out[phase] += max(0.0, value)
    return (out[0], out[1], out[2])


class _Peer:
    """What every peer shares: its charger list, its last readings (kept while a charger is away), writes on change."""

    def __init__(self, setup: SiteSetup) -> None:
        self.chargers: tuple[SiteCharger, ...] = setup.chargers
        self.by_id = {ch.id: ch for ch in setup.chargers}
        self.last: dict[str, ChargerReading | None] = {ch.id: None for ch in setup.chargers}
        self.sent: dict[str, float] = {}

    def observe(self, observations: Mapping[str, ChargerReading | None]) -> None:
        for cid, reading in observations.items():
            if reading is not None:
                self.last[cid] = reading

    def measured_load(self) -> dict[NodePhase, float]:
        """The load per (node, phase), as a meter on each node would see it: every charger's last reading."""
        load: dict[NodePhase, float] = {}
        for ch in self.chargers:
            currents = _site_currents(ch, self.last[ch.id])
            for node in ch.nodes:
                for phase in range(3):
                    load[(node, phase)] = load.get((node, phase), 0.0) + currents[phase]
        return load

    def write(self, bus: ChargerBus, charger_id: str, current_a: float,
              reading: ChargerReading | None) -> bool:
        """Send a setpoint if it differs from what the charger reports (or was last sent); True if it changed."""
        known = reading.setpoint_a if reading is not None else self.sent.get(charger_id)
        if known == current_a:
            return False
        if bus.write_current(charger_id, current_a):
            self.sent[charger_id] = current_a
            return True
        return False


class EvccLike(_Peer):
    """evcc: a circuit only validates increases against measured headroom; first come, first served.

    Every ``INTERVAL_S`` all measurements are refreshed, then **one** loadpoint (round-robin) is regulated: it asks
    for its maximum; an increase over what it draws now is capped at the headroom of every circuit above it
    (limit − measured load, on the worst phase, never below zero in total), and a circuit already over its limit
    pushes it down by the overshoot. Less than 6 A disables it; currents are whole amps. Nobody is ever asked to
    make room for a newcomer.
    """

    INTERVAL_S = 30.0

    def __init__(self, setup: SiteSetup) -> None:
        super().__init__(setup)
        self.next_tick = 0.0
        self.turn = 0

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.observe(observations)
        if now + 1e-9 < self.next_tick:
            return
        self.next_tick = now + self.INTERVAL_S
        ch = self.chargers[self.turn % len(self.chargers)]
        self.turn += 1
        reading = observations.get(ch.id)
        if reading is None:
            return
        if not _plugged(reading):
            self.write(bus, ch.id, 0.0, reading)
            return
        load = self.measured_load()
        own = max(_site_currents(ch, reading))
        new = ch.max_current_a
        for node in ch.nodes:
            worst_load = max(load[(node, phase)] for phase in range(3))
            headroom = min(limits[node]) - worst_load
            if new - own > headroom:
                new = max(0.0, own + headroom)
        new = float(math.floor(new + 1e-9))
        self.write(bus, ch.id, new if new >= MIN_CURRENT_A else 0.0, reading)


class OpenWbLike(_Peer):
    """openWB: every ``INTERVAL_S`` a full allocation per phase, minimum current first, then equal shares.

    Chargepoints that have a car are put in openWB's order (lowest required current, then least energy since
    plug-in, then earliest plug-in, then lowest number; state of charge is unknown here). Stage 1 gives each in
    that order its 6 A if every phase of every counter above it still has room; stage 2 walks them again, each
    taking ``min(what it still misses, room on its phase ÷ chargepoints still to serve there)``, so the room is
    water-filled. Headroom is per phase, with each chargepoint's phase rotation. All changed currents are written
    in the same cycle: decreases and increases together.
    """

    INTERVAL_S = 10.0

    def __init__(self, setup: SiteSetup) -> None:
        super().__init__(setup)
        self.next_tick = 0.0
        self.plugged_at: dict[str, float] = {}

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.observe(observations)
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if _plugged(reading):
                self.plugged_at.setdefault(ch.id, now)
            elif reading is not None:
                self.plugged_at.pop(ch.id, None)
        if now + 1e-9 < self.next_tick:
            return
        self.next_tick = now + self.INTERVAL_S
        room: dict[NodePhase, float] = {(node, p): limits[node][p] for node in limits for p in range(3)}
        active: list[SiteCharger] = []
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:  # away: it keeps drawing what it did
                currents = _site_currents(ch, self.last[ch.id])
                for node in ch.nodes:
                    for p in range(3):
                        room[(node, p)] -= currents[p]
            elif _plugged(reading):
                active.append(ch)

        def order(ch: SiteCharger) -> tuple[float, float, float, int]:
            reading = self.last[ch.id]
            energy = reading.session_energy_wh if reading is not None and reading.session_energy_wh else 0.0
            return (MIN_CURRENT_A, energy, self.plugged_at.get(ch.id, now), self.chargers.index(ch))

        active.sort(key=order)
        grant: dict[str, float] = {}
        for ch in active:  # stage 1: minimum current
            keys = [(node, p) for node in ch.nodes for p in ch.site_phases]
            if all(room[k] >= MIN_CURRENT_A for k in keys):
                for k in keys:
                    room[k] -= MIN_CURRENT_A
                grant[ch.id] = MIN_CURRENT_A
        served = [ch for ch in active if ch.id in grant]
        left: dict[NodePhase, int] = {}
        for ch in served:
            for node in ch.nodes:
                for p in ch.site_phases:
                    left[(node, p)] = left.get((node, p), 0) + 1
        for ch in served:  # stage 2: equal share of what is left, recomputed after every grant
            keys = [(node, p) for node in ch.nodes for p in ch.site_phases]
            extra = min([ch.max_current_a - grant[ch.id]] + [max(0.0, room[k]) / left[k] for k in keys])
            extra = float(math.floor(extra + 1e-9))
            for k in keys:
                room[k] -= extra
                left[k] -= 1
            grant[ch.id] += extra
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is not None:
                self.write(bus, ch.id, grant.get(ch.id, 0.0), reading)


class OpenEmsLike(_Peer):
    """OpenEMS (legacy EVCS cluster, peak shaving): a 1 s cycle, priority order, and a 30 s pause after a change.

    The budget is the limit on the worst phase, and every charger is counted on all three phases (a single-phase
    one as if it drew on each), as OpenEMS's symmetric model does. In configuration order, a charger with a car keeps
    (or gets) its 6 A guarantee if it fits, otherwise 0; the rest is handed out in the same order, each up to what
    its car was seen to take (its "learned maximum") or the charger's maximum. The cluster does not regulate while
    any charger is still within its ``PAUSE_S`` after a change, unless a circuit is over its limit; a decrease is
    always sent, an increase to a charger in its pause waits.
    """

    PAUSE_S = 30.0

    def __init__(self, setup: SiteSetup) -> None:
        super().__init__(setup)
        self.changed_at: dict[str, float] = {}
        self.learned: dict[str, float] = {}

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.observe(observations)
        self._learn(observations)
        load = self.measured_load()
        over = any(load[(node, p)] > limits[node][p] + 0.5 for node in limits for p in range(3))
        settling = any(now - at < self.PAUSE_S for at in self.changed_at.values())
        if settling and not over:
            return
        room = {node: min(values) for node, values in limits.items()}
        targets: dict[str, float] = {}
        active: list[SiteCharger] = []
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:
                drawn = max(_site_currents(ch, self.last[ch.id]))
                for node in ch.nodes:
                    room[node] -= drawn
            elif _plugged(reading):
                active.append(ch)
        for ch in active:  # pass 1: the guarantee, in priority (configuration) order
            if all(room[node] >= MIN_CURRENT_A for node in ch.nodes):
                for node in ch.nodes:
                    room[node] -= MIN_CURRENT_A
                targets[ch.id] = MIN_CURRENT_A
        for ch in active:  # pass 2: the rest in the same order, up to what each takes
            if ch.id not in targets:
                continue
            want = self.learned.get(ch.id, ch.max_current_a) - targets[ch.id]
            extra = float(math.floor(max(0.0, min([want] + [room[node] for node in ch.nodes])) + 1e-9))
            for node in ch.nodes:
                room[node] -= extra
            targets[ch.id] += extra
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:
                continue
            target = targets.get(ch.id, 0.0)
            current = reading.setpoint_a or 0.0
            if target > current and now - self.changed_at.get(ch.id, -math.inf) < self.PAUSE_S:
                continue
            if self.write(bus, ch.id, target, reading):
                self.changed_at[ch.id] = now

    def _learn(self, observations: Mapping[str, ChargerReading | None]) -> None:
        """The EV's maximum: what it draws while offered clearly more (forgotten when it leaves)."""
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:
                continue
            if not _plugged(reading):
                self.learned.pop(ch.id, None)
                continue
            drawn = max(_site_currents(ch, reading))
            offered = reading.setpoint_a or 0.0
            if drawn >= MIN_CURRENT_A and drawn < offered - 1.0:
                self.learned[ch.id] = math.ceil(drawn) + 1.0
            elif drawn >= offered - 0.5 and ch.id in self.learned:
                del self.learned[ch.id]


@dataclass(frozen=True, slots=True)
class _Lease:
    current_a: float
    until_s: float


class EverestLike(_Peer):
    """EVerest: every 1 s a market of 0.5 A slices over the energy tree, each limit a lease valid for 10 s.

    In tree (configuration) order each EVSE with a car buys, round after round (at most 100), one slice from what
    every node above it still offers; its first purchase must be the whole 6 A minimum or nothing. That shares
    equally where a node binds. It works on commanded currents only: it does not see what cars draw, so a car that
    takes less than the EVSE's maximum keeps its unused slices. All limits are sent together. The lease is modelled
    by programming a fail-safe of 0 A: a charger that stops hearing from it falls back to 0.
    """

    SLICE_A = 0.5
    ROUNDS = 100
    LEASE_S = 10.0

    def __init__(self, setup: SiteSetup) -> None:
        super().__init__(setup)
        self.failsafe_set: set[str] = set()

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.observe(observations)
        offer = {(node, p): limits[node][p] for node in limits for p in range(3)}
        buyers: list[SiteCharger] = []
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:  # its last lease still runs on the device; count what was commanded
                for node in ch.nodes:
                    for p in ch.site_phases:
                        offer[(node, p)] -= self.sent.get(ch.id, 0.0)
            elif _plugged(reading):
                buyers.append(ch)
        bought = _market(buyers, offer, self.SLICE_A, self.ROUNDS)
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is None:
                continue
            if ch.has_failsafe and ch.id not in self.failsafe_set and bus.write_failsafe(ch.id, 0.0):
                self.failsafe_set.add(ch.id)
            self.write(bus, ch.id, bought.get(ch.id, 0.0), reading)


def _market(buyers: Sequence[SiteCharger], offer: dict[NodePhase, float], slice_a: float,
            rounds: int) -> dict[str, float]:
    bought: dict[str, float] = {}
    for _ in range(rounds):
        traded = False
        for ch in buyers:
            have = bought.get(ch.id, 0.0)
            step = MIN_CURRENT_A if have == 0.0 else slice_a
            if have + step > ch.max_current_a + 1e-9:
                continue
            keys = [(node, p) for node in ch.nodes for p in ch.site_phases]
            if all(offer[k] >= step - 1e-9 for k in keys):
                for k in keys:
                    offer[k] -= step
                bought[ch.id] = have + step
                traded = True
        if not traded:
            break
    return bought


PEERS: Mapping[str, Callable[[SiteSetup], Policy]] = {
    "evcc_like": EvccLike,
    "openwb_like": OpenWbLike,
    "openems_like": OpenEmsLike,
    "everest_like": EverestLike,
}
"""Peer policies by name, in the order the bench prints them."""
