"""A site (or sub-circuit) meter behind any meter profile: a background load plus what simulated chargers draw.

That is what a site-meter scenario needs: the gateway sees the building's own load move and its chargers' currents
add to it on the phases they are wired to, through the profile's encoding. Import energy integrates the power
between requests (lazily, from the injected clock, like the charger simulator).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from drivers.codec import Value
from drivers.profile import MeterProfile
from drivers.sim.image import ProfileImage
from drivers.sim.server import Span, Table
from drivers.sim.vehicle import NOMINAL_VOLTAGE_V

IMPORT_ENERGY_START_WH = 5_000_000.0


class CurrentSource(Protocol):
    """Anything that draws current on its L1..L3: a Modbus ``SimCharger`` or a ``SimOcppCharger``."""

    def phase_currents_a(self) -> tuple[float, float, float]: ...


@dataclass(frozen=True, slots=True)
class MeteredCharger:
    """A simulated charger behind the meter; ``site_phases[i]`` is the meter phase (0..2) its L(i+1) lands on."""

    charger: CurrentSource
    site_phases: tuple[int, int, int] = (0, 1, 2)


class SimMeter:
    """One simulated meter (one unit id). Implements ``drivers.sim.server.RegisterModel``."""

    def __init__(self, profile: MeterProfile, clock: Callable[[], float], *,
                 background_a: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 chargers: Sequence[MeteredCharger] = (), voltage_v: float = NOMINAL_VOLTAGE_V) -> None:
        self.profile = profile
        self._clock = clock
        self.image = ProfileImage(profile)
        self.background_a = background_a
        self.chargers = list(chargers)
        self.voltage_v = voltage_v
        self.energy_import_wh = IMPORT_ENERGY_START_WH
        self._last_time = clock()
        self._last_power_w = self._power(self.phase_currents_a())

    def phase_currents_a(self) -> tuple[float, float, float]:
        totals = list(self.background_a)
        for metered in self.chargers:
            for own, site in zip(metered.charger.phase_currents_a(), metered.site_phases, strict=True):
                totals[site] += own
        return (totals[0], totals[1], totals[2])

    def _power(self, currents: tuple[float, float, float]) -> float:
        return sum(currents) * self.voltage_v

    def values(self) -> dict[str, Value]:
        now = self._clock()
        currents = self.phase_currents_a()
        power = self._power(currents)
        if now > self._last_time:
            # Trapezoid between requests; only import counts (a negative power exports).
            mean_w = (self._last_power_w + power) / 2
            self.energy_import_wh += max(0.0, mean_w) * (now - self._last_time) / 3600.0
            self._last_time = now
        self._last_power_w = power
        return {
            "current_l1": currents[0], "current_l2": currents[1], "current_l3": currents[2],
            "voltage_l1": self.voltage_v, "voltage_l2": self.voltage_v, "voltage_l3": self.voltage_v,
            "power": power, "energy_import": self.energy_import_wh,
        }

    def spans(self) -> Mapping[Table, Sequence[Span]]:
        return self.image.spans()

    def read(self, table: Table, address: int, count: int, *, garbage: bool) -> list[int]:
        return self.image.read(table, address, count, self.values(), garbage=garbage)

    def write(self, table: Table, address: int, values: Sequence[int], function_code: int) -> int | None:
        written = self.image.decode_write(table, address, values, function_code)
        return written if isinstance(written, int) else None
