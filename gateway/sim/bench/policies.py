"""The baselines powershare is measured against, as ``gateway.sim.virtual_site.Policy`` objects.

Both divide the limit equally, which is what an installer or a simple load manager does:

* ``StaticSplit``: every charger fixed at its share of the limit among *all* chargers (0 if that is below 6 A),
  written once and again only when a limit changes. No sharing: a charger without a car keeps its share idle.
* ``NaiveEqual``: the limit divided equally among the chargers that have a car plugged in, recomputed every tick
  and written to everyone at once. It shares, but it does not wait for a car to come down before raising
  another, so while shares move the site can be over its limit for as long as the slower car lags.

Shares respect every circuit and phase a charger sits on: the share is the least, over the charger's (node,
phase) constraints, of that limit divided by the number of counted chargers on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from drivers.model import ChargerReading
from gateway.sim.virtual_site import ChargerBus, PhaseLimits, SiteCharger, SiteSetup

MIN_CURRENT_A = 6.0


def equal_shares(chargers: Iterable[SiteCharger], limits: Mapping[str, PhaseLimits]) -> dict[str, float]:
    """Each charger's whole-amp equal share of every limit it sits under, capped at its maximum; 0 below 6 A."""
    counted = list(chargers)
    count: dict[tuple[str, int], int] = {}
    for ch in counted:
        for node in ch.nodes:
            for phase in ch.site_phases:
                count[(node, phase)] = count.get((node, phase), 0) + 1
    shares: dict[str, float] = {}
    for ch in counted:
        share = min([ch.max_current_a] + [limits[node][phase] / count[(node, phase)]
                                          for node in ch.nodes for phase in ch.site_phases])
        share = math.floor(share + 1e-9)
        shares[ch.id] = float(share) if share >= MIN_CURRENT_A else 0.0
    return shares


class _Writer:
    """Writes a value only when it differs from what the charger last accepted, retrying failed writes.

    Static wiring needs no polling: a charger is written when its share changes (a new limit) and never again.
    """

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.failsafe: dict[str, float] = {}

    def set_current(self, bus: ChargerBus, charger_id: str, current_a: float) -> None:
        if self.current.get(charger_id) != current_a and bus.write_current(charger_id, current_a):
            self.current[charger_id] = current_a

    def set_failsafe(self, bus: ChargerBus, charger: SiteCharger, current_a: float) -> None:
        if charger.has_failsafe and self.failsafe.get(charger.id) != current_a \
                and bus.write_failsafe(charger.id, current_a):
            self.failsafe[charger.id] = current_a


class StaticSplit:
    def __init__(self, setup: SiteSetup) -> None:
        self.chargers = setup.chargers
        self.writer = _Writer()
        self.limits: dict[str, PhaseLimits] = {}
        self.shares: dict[str, float] = {}

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        if limits != self.limits:
            self.limits, self.shares = dict(limits), equal_shares(self.chargers, limits)
        for ch in self.chargers:
            self.writer.set_current(bus, ch.id, self.shares[ch.id])
            self.writer.set_failsafe(bus, ch, self.shares[ch.id])


class NaiveEqual:
    def __init__(self, setup: SiteSetup) -> None:
        self.chargers = setup.chargers
        self.writer = _Writer()
        self.key: tuple[object, ...] = ()
        self.shares: dict[str, float] = {}
        self.fail_safe: dict[str, float] = {}

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        plugged = []
        for ch in self.chargers:
            reading = observations.get(ch.id)
            if reading is not None and reading.state is not None and reading.state.plugged_in:
                plugged.append(ch)
        key = (tuple(ch.id for ch in plugged), tuple(sorted(limits.items())))
        if key != self.key:
            self.key = key
            self.shares, self.fail_safe = equal_shares(plugged, limits), equal_shares(self.chargers, limits)
        shares, fail_safe = self.shares, self.fail_safe
        for ch in self.chargers:
            reading = observations.get(ch.id)
            target = shares.get(ch.id, 0.0)
            if reading is not None and reading.setpoint_a != target:
                bus.write_current(ch.id, target)
            self.writer.set_failsafe(bus, ch, fail_safe[ch.id])
