"""A whole simulated installation: chargers on TCP endpoints and RS-485 lines, and a site meter, on one clock.

This is what ``powershare simulate``, docker-compose and end-to-end tests run. It owns its servers (start, stop)
and nothing else: the chargers and the meter are plain objects the caller may plug cars into or fault at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drivers.profile import ChargerProfile, MeterProfile
from drivers.sim.charger_sim import SimCharger
from drivers.sim.meter_sim import MeteredCharger, SimMeter
from drivers.sim.server import Listen, RegisterModel, SimServer
from drivers.sim.vehicle import VehicleSpec


@dataclass
class SimLine:
    """One TCP endpoint or RS-485 line and the simulated units on it."""

    listen: Listen
    chargers: dict[int, SimCharger] = field(default_factory=dict)
    meters: dict[int, SimMeter] = field(default_factory=dict)
    others: dict[int, RegisterModel] = field(default_factory=dict)
    """Extra unit ids chargers answer on (a station unit), shared by the chargers of the line."""
    server: SimServer | None = None


class SimulatedSite:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lines: list[SimLine] = []

    def add_line(self, listen: Listen) -> SimLine:
        line = SimLine(listen)
        self.lines.append(line)
        return line

    def add_chargers(self, line: SimLine, profile: ChargerProfile, units: Iterable[int],
                     cars: dict[int, VehicleSpec] | None = None) -> list[SimCharger]:
        added = []
        for unit in units:
            self._check_free(line, unit)
            charger = SimCharger(profile, self.clock, serial=f"SIM-{len(self.chargers()) + 1:04d}")
            if cars and unit in cars:
                charger.plug(cars[unit])
            line.chargers[unit] = charger
            for other, model in charger.extra_units().items():
                line.others.setdefault(other, model)  # a shared station unit: the first charger's answers
            added.append(charger)
        return added

    def add_meter(self, line: SimLine, profile: MeterProfile, unit: int, *,
                  background_a: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SimMeter:
        """A site meter that sees every charger of the site (on its own L1..L3) plus a background load."""
        self._check_free(line, unit)
        meter = SimMeter(profile, self.clock, background_a=background_a,
                         chargers=[MeteredCharger(c) for c in self.chargers()])
        line.meters[unit] = meter
        return meter

    def chargers(self) -> list[SimCharger]:
        return [c for line in self.lines for c in line.chargers.values()]

    @staticmethod
    def _check_free(line: SimLine, unit: int) -> None:
        if unit in line.chargers or unit in line.meters:
            raise ValueError(f"unit {unit} is used twice on {line.listen}")

    async def start(self) -> None:
        try:
            for line in self.lines:
                models: dict[int, RegisterModel] = {**line.others, **line.chargers, **line.meters}
                server = SimServer(models, line.listen)
                await server.start()
                line.server = server
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for line in self.lines:
            if line.server is not None:
                await line.server.stop()
                line.server = None
