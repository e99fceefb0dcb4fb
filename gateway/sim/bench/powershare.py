"""powershare's own controller as a benchmark policy, driven by the gateway's own control round.

Each tick is one ``gateway.core.round.ControlRound`` over a link to the virtual site, exactly as the supervisor
runs it over Modbus: the polls and the limits in, the decreases and then the increases out, every outcome reported;
then each charger that answered has its fail-safe current programmed if due. The virtual site's writes complete at
once, so the round runs without an event loop (``run_now``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from drivers.model import ChargerReading
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.round import ControlRound, Outcome, run_now
from gateway.sim.virtual_site import ChargerBus, PhaseLimits, SiteSetup
from gateway.site.config import ControlConfig


class _BusLink:
    """``gateway.core.round.Link`` over the virtual site's bus, at the tick's instant."""

    def __init__(self, bus: ChargerBus, now: float) -> None:
        self.bus = bus
        self.at = now

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        return [_outcome(self.bus.write_current(c.charger_id, c.current_a)) for c in commands]

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        return _outcome(self.bus.write_failsafe(charger_id, current_a))

    def now(self) -> float:
        return self.at


def _outcome(ok: bool) -> Outcome:
    return Outcome.DONE if ok else Outcome.FAILED


class Powershare:
    def __init__(self, setup: SiteSetup, settings: ControlConfig | None = None) -> None:
        specs = [ChargerSpec(id=ch.id, nodes=ch.nodes, site_phases=ch.site_phases, max_current_a=ch.max_current_a,
                             has_failsafe=ch.has_failsafe) for ch in setup.chargers]
        self.round = ControlRound(Controller(specs, settings or ControlConfig()))

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        polls = {cid: Observation(reading) if reading is not None else Observation(None, "timeout")
                 for cid, reading in observations.items()}
        link = _BusLink(bus, now)
        run_now(self.round.run(now, polls, Limits(node_limits_a=limits), link))
        for cid, reading in observations.items():
            if reading is not None and self.round.failsafe_due(cid) is not None:
                run_now(self.round.program_failsafe(cid, link))
