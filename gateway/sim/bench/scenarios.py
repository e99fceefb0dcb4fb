"""The benchmark's sites: deterministic for a seed, and scalable in duration so tests can run short variants.

Time 0 is 17:00. Every time in a scenario is a fraction of its duration, so a 30-minute variant has the same
shape as the full evening (arrivals in the first third, departures near the end, faults at the same points), just
compressed; cars keep their real sizes, so in short variants most are still charging when the run ends.

* ``seed-six``: the product's reference site: six 48 A units on one split-phase 60 A service (240 V, one current
  per leg), cars of every size arriving through the evening, a few leaving early and freeing the unit for another.
* ``depot-3ph``: 24 three-phase 32 A chargers in a van depot, 160 A per phase; eight sit on board "B" whose 63 A
  feeder binds long before the site does; 1-phase vans spread over L1/L2/L3 by phase rotation.
* ``scarce``: eight 3-phase chargers on 32 A per phase: less than 6 A for every car, so cars must take turns.
* ``faults``: eight 3-phase chargers on 80 A per phase; chargers drop out (one of them for less than its
  communication timeout, one that has no fail-safe, one late in the evening when it runs well above its fail-safe
  share) and come back, and the network limit drops to 48 A mid-run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace

from drivers.sim.vehicle import VehicleSpec
from gateway.core.limits import SITE_NODE
from gateway.sim.virtual_site import LimitChange, Outage, SiteCharger, SiteSetup

HOUR_S = 3600.0
ROTATIONS = ((0, 1, 2), (1, 2, 0), (2, 0, 1))


def _lag(rng: random.Random) -> float:
    """A car's response time: 1 to 5 s (IEC 61851-1 allows up to 5 s), to a tenth of a second."""
    return round(rng.uniform(1.0, 5.0), 1)


def _at(fraction: float, duration_s: float) -> float:
    return float(round(fraction * duration_s))


def seed_six(seed: int = 1, hours: float = 12.0) -> SiteSetup:
    rng = random.Random(f"seed-six/{seed}")
    duration = hours * HOUR_S
    chargers = []
    for i in range(6):
        visits = []
        arrival = _at(rng.uniform(0.0, 0.33), duration)
        early_leaver = rng.random() < 0.35
        departure = _at(rng.uniform(0.4, 0.6), duration) if early_leaver else None
        visits.append(_car(rng, f"u{i + 1}-car1", arrival, departure, phases=1, battery=(40.0, 80.0),
                           soc=(0.45, 0.75)))
        if departure is not None:
            visits.append(_car(rng, f"u{i + 1}-car2", departure + _at(rng.uniform(0.02, 0.08), duration), None,
                               phases=1, battery=(40.0, 80.0), soc=(0.45, 0.75)))
        chargers.append(SiteCharger(id=f"u{i + 1}", nodes=(SITE_NODE,), site_phases=(0,), max_current_a=48.0,
                                    visits=tuple(visits)))
    return SiteSetup(name="seed-six", chargers=tuple(chargers), node_limits_a={SITE_NODE: (60.0, 60.0, 60.0)},
                     duration_s=duration, voltage_v=240.0,
                     description="six 48 A units, split-phase 60 A, cars through the evening")


def depot_3ph(seed: int = 1, hours: float = 12.0) -> SiteSetup:
    rng = random.Random(f"depot-3ph/{seed}")
    duration = hours * HOUR_S
    chargers = []
    for i in range(24):
        nodes = ("board-b", SITE_NODE) if i % 3 == 1 else (SITE_NODE,)
        phases = 1 if rng.random() < 0.4 else 3
        arrival = _at(rng.uniform(0.0, 0.25), duration)
        departure = _at(rng.uniform(0.85, 1.0), duration) if rng.random() < 0.5 else None
        van = _car(rng, f"c{i + 1:02d}-van", arrival, departure, phases=phases, battery=(40.0, 90.0),
                   onboard=(16.0, 32.0))
        chargers.append(SiteCharger(id=f"c{i + 1:02d}", nodes=nodes, site_phases=ROTATIONS[i % 3],
                                    max_current_a=32.0, visits=(van,)))
    return SiteSetup(name="depot-3ph", chargers=tuple(chargers),
                     node_limits_a={SITE_NODE: (160.0, 160.0, 160.0), "board-b": (63.0, 63.0, 63.0)},
                     duration_s=duration,
                     description="24 x 32 A 3-phase, 1- and 3-phase vans, board B 63 A binds, site 160 A")


def scarce(seed: int = 1, hours: float = 10.0) -> SiteSetup:
    rng = random.Random(f"scarce/{seed}")
    duration = hours * HOUR_S
    chargers = []
    for i in range(8):
        car = _car(rng, f"s{i + 1}-car", _at(rng.uniform(0.0, 0.1), duration), None, phases=3,
                   battery=(30.0, 60.0), onboard=(16.0, 32.0), soc=(0.3, 0.6))
        chargers.append(SiteCharger(id=f"s{i + 1}", nodes=(SITE_NODE,), site_phases=ROTATIONS[0],
                                    max_current_a=32.0, visits=(car,)))
    return SiteSetup(name="scarce", chargers=tuple(chargers), node_limits_a={SITE_NODE: (32.0, 32.0, 32.0)},
                     duration_s=duration, description="8 cars on 32 A per phase (< 6 A x 8): cars take turns")


def faults(seed: int = 1, hours: float = 8.0) -> SiteSetup:
    rng = random.Random(f"faults/{seed}")
    duration = hours * HOUR_S
    chargers = []
    for i in range(8):
        car = _car(rng, f"f{i + 1}-car", _at(rng.uniform(0.0, 0.15), duration), None,
                   phases=1 if i in (3, 6) else 3, battery=(40.0, 80.0))
        chargers.append(SiteCharger(id=f"f{i + 1}", nodes=(SITE_NODE,), site_phases=ROTATIONS[i % 3],
                                    max_current_a=32.0, has_failsafe=i != 7, comm_timeout_s=60.0 if i == 4 else 30.0,
                                    visits=(car,)))
    outages = (
        Outage("f2", _at(0.20, duration), _at(0.30, duration)),
        Outage("f5", _at(0.35, duration), _at(0.35, duration) + max(_at(0.02, duration), 90.0)),
        Outage("f3", _at(0.40, duration), _at(0.40, duration) + 20.0),
        Outage("f8", _at(0.50, duration), _at(0.55, duration)),
        Outage("f2", _at(0.60, duration), _at(0.65, duration)),
        Outage("f3", _at(0.75, duration), _at(0.80, duration)),
    )
    limit_changes = (
        LimitChange(_at(0.45, duration), SITE_NODE, (48.0, 48.0, 48.0)),
        LimitChange(_at(0.70, duration), SITE_NODE, (80.0, 80.0, 80.0)),
    )
    return SiteSetup(name="faults", chargers=tuple(chargers), node_limits_a={SITE_NODE: (80.0, 80.0, 80.0)},
                     duration_s=duration, outages=outages, limit_changes=limit_changes,
                     description="8 x 32 A, 80 A; six outages (one < timeout, one without fail-safe), "
                                 "limit 80 -> 48 -> 80 A")


def _car(rng: random.Random, name: str, arrival_s: float, departure_s: float | None, *, phases: int,
         battery: tuple[float, float] = (40.0, 100.0), onboard: tuple[float, ...] = (16.0, 32.0, 40.0, 48.0),
         soc: tuple[float, float] = (0.15, 0.5)) -> VehicleSpec:
    return VehicleSpec(name=name, onboard_limit_a=rng.choice(onboard), phases=phases,
                       battery_kwh=round(rng.uniform(*battery)), soc_start=round(rng.uniform(*soc), 2),
                       soc_target=rng.choice((0.8, 0.9, 1.0)), arrival_s=arrival_s, departure_s=departure_s,
                       lag_s=_lag(rng))


def known(builder: Callable[..., SiteSetup]) -> Callable[..., SiteSetup]:
    """The same site with every car's departure and energy wanted told to the policy: a car that stays to the end
    of the run is said to leave then (the depot's fleet schedule: "vans leave at 05:00")."""

    def build_known(seed: int = 1, **kwargs: float) -> SiteSetup:
        setup = builder(seed=seed, **kwargs)
        chargers = tuple(replace(ch, visits=tuple(
            car if car.departure_s is not None else replace(car, departure_s=setup.duration_s)
            for car in ch.visits)) for ch in setup.chargers)
        return replace(setup, name=f"{setup.name}-known", chargers=chargers, needs_known=True,
                       description=f"{setup.description}; departures and energy known")

    return build_known


SCENARIOS: Mapping[str, Callable[..., SiteSetup]] = {
    "seed-six": seed_six,
    "seed-six-known": known(seed_six),
    "depot-3ph": depot_3ph,
    "depot-3ph-known": known(depot_3ph),
    "scarce": scarce,
    "faults": faults,
}
"""Builders by name; each takes ``seed`` and ``hours`` (its default is the full run)."""


def build(name: str, seed: int = 1, hours: float | None = None) -> SiteSetup:
    """The named scenario; ``hours`` shortens (or lengthens) it, keeping its shape."""
    builder = SCENARIOS[name]
    return builder(seed=seed) if hours is None else builder(seed=seed, hours=hours)
