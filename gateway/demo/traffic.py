"""What happens at the demo's car park: which cars come and go, and the scripted moments that show the point.

Pure and deterministic for a seed: the same ``--seed`` gives the same cars in the same order at the same chargers
(times are seconds since the demo started, in real time; the demo's shell sleeps until each one).

``--speed`` makes batteries fill faster than real time and nothing else: each car's battery is ``1/speed`` of its
size, so its state of charge moves ``speed`` times faster while its currents, its response lag and the chargers'
watchdogs stay real. (Speeding up the simulated devices' clock instead would also speed up their communication
watchdogs, which a gateway polling in real time could then not keep fed.)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from drivers.sim.vehicle import VehicleSpec


@dataclass(frozen=True, slots=True)
class CarModel:
    label: str
    onboard_limit_a: float
    phases: int
    battery_kwh: float


MODELS: tuple[CarModel, ...] = (
    CarModel("city car 1×16 A", 16, 1, 37),
    CarModel("hatchback 1×32 A", 32, 1, 58),
    CarModel("saloon 3×16 A", 16, 3, 77),
    CarModel("estate 3×32 A", 32, 3, 95),
    CarModel("van 3×10 A", 10, 3, 50),
    CarModel("plug-in hybrid 1×13 A", 13, 1, 14),
)


@dataclass(frozen=True, slots=True)
class Visit:
    car: VehicleSpec
    model: CarModel
    stay_s: float
    """Real seconds until the driver comes back and unplugs, full or not."""


class Traffic:
    """The stream of visits for one seed."""

    def __init__(self, seed: int, speed: float, mean_gap_s: float = 4.0) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self._rng = random.Random(seed)
        self._speed = speed
        self._mean_gap_s = mean_gap_s
        self._count = 0

    def visit(self) -> Visit:
        self._count += 1
        model = self._rng.choice(MODELS)
        soc = round(self._rng.uniform(0.15, 0.9), 2)
        car = VehicleSpec(f"car {self._count}", onboard_limit_a=model.onboard_limit_a, phases=model.phases,
                          battery_kwh=model.battery_kwh / self._speed, soc_start=soc,
                          lag_s=round(self._rng.uniform(0.5, 2.5), 1))
        return Visit(car, model, stay_s=round(self._rng.uniform(25, 90), 1))

    def gap_s(self) -> float:
        """Seconds until the next car arrives."""
        return round(self._rng.expovariate(1 / self._mean_gap_s), 2)

    def pick(self, free: Sequence[int]) -> int:
        """Which free charger the next car takes."""
        return self._rng.choice(list(free))


class MomentKind(StrEnum):
    LIMIT = "limit"
    SILENT = "silent"
    ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class Moment:
    at_s: float
    """Seconds into the cycle."""
    kind: MomentKind
    limit_a: float = 0.0


CYCLE_S = 90.0
"""Without --duration the script repeats every this many seconds."""


def script(cycle_s: float, limit_a: float) -> tuple[Moment, ...]:
    """One cycle: the building's management system halves the limit and gives it back; then a charger stops
    answering for a while and returns. Spread over the cycle so that every step is seen settling."""
    low = max(6.0, round(limit_a / 2))
    return (
        Moment(0.30 * cycle_s, MomentKind.LIMIT, low),
        Moment(0.55 * cycle_s, MomentKind.LIMIT, limit_a),
        Moment(0.60 * cycle_s, MomentKind.SILENT),
        Moment(0.85 * cycle_s, MomentKind.ANSWER),
    )
