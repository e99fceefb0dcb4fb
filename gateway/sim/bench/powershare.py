"""powershare's own controller as a benchmark policy, driven exactly as the gateway's supervisor drives it.

Each tick: hand the controller every poll and the limits, send the commands it returns in order and report each
outcome (``write_done``); keep every charger's fail-safe current programmed to the controller's fair share
(``failsafe_currents``, reported with ``failsafe_done``), re-programming when the share changes or a write failed.
On a site whose needs are known, each present car's departure and energy wanted go to ``set_needs`` first, as the
supervisor passes on what the page, the site file's schedules, the BMS or OCPP said.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.model import ChargerReading
from gateway.core.control import ChargerSpec, Controller, Limits, Observation
from gateway.core.deadlines import Need
from gateway.sim.virtual_site import ChargerBus, PhaseLimits, SiteSetup
from gateway.site.config import ControlConfig


class Powershare:
    def __init__(self, setup: SiteSetup, settings: ControlConfig | None = None) -> None:
        self.specs = {ch.id: ChargerSpec(id=ch.id, nodes=ch.nodes, site_phases=ch.site_phases,
                                         max_current_a=ch.max_current_a, has_failsafe=ch.has_failsafe,
                                         comm_timeout_s=ch.comm_timeout_s)
                      for ch in setup.chargers}
        self.controller = Controller(list(self.specs.values()), settings or ControlConfig())
        self.failsafe: dict[str, float] = {}
        """Fail-safe currents the chargers acknowledged."""
        self.shares: dict[str, float] = {}
        self.shares_for: Limits | None = None
        self.needs = _needs(setup) if setup.needs_known else None

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        in_force = Limits(node_limits_a=limits)
        if self.needs is not None:
            self.controller.set_needs({cid: need for cid, visits in self.needs.items()
                                       for arrival, departure, need in visits if arrival <= now < departure})
        polls = {cid: Observation(reading) if reading is not None else Observation(None, "timeout")
                 for cid, reading in observations.items()}
        for command in self.controller.step(now, polls, in_force):
            ok = bus.write_current(command.charger_id, command.current_a)
            self.controller.write_done(command.charger_id, command.current_a, ok, now)
        if in_force != self.shares_for:  # the fair share only changes with the limits
            self.shares, self.shares_for = self.controller.failsafe_currents(in_force), in_force
        for cid, amps in self.shares.items():
            if not self.specs[cid].has_failsafe or self.failsafe.get(cid) == amps or observations.get(cid) is None:
                continue
            ok = bus.write_failsafe(cid, amps)
            self.controller.failsafe_done(cid, amps, ok)
            if ok:
                self.failsafe[cid] = amps


def _needs(setup: SiteSetup) -> dict[str, list[tuple[float, float, Need]]]:
    """Per charger, each visit's stay and what it asks for: its departure (or the end of the run) and its energy."""
    out: dict[str, list[tuple[float, float, Need]]] = {}
    for ch in setup.chargers:
        for car in ch.visits:
            departure = car.departure_s if car.departure_s is not None else setup.duration_s
            wanted = (car.soc_target - car.soc_start) * car.battery_kwh * 1000.0
            out.setdefault(ch.id, []).append((car.arrival_s, departure, Need(departure, wanted)))
    return out
