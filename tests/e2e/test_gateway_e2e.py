"""The gateway end to end: simulated chargers over real loopback Modbus TCP, the real supervisor and drivers.

A monitor samples the simulated vehicles' physical currents every 20 ms for the whole test: no limit may be
exceeded at any sample, except in the vehicle response time right after the limit itself was lowered (physics:
no car can stop drawing faster than that; the controller lowers every charger in the same step).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.aio import cancel_and_wait
from drivers.bus import BusPool
from drivers.model import Iec61851State
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.commands import CommandRejected, SetEnabled, SetNetworkLimit
from gateway.runtime.read_model import Availability
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
RESPONSE_S = 1.0
"""The simulated cars follow a new pilot within 0.3 s; the monitor allows 1 s after a limit is lowered."""


@dataclass
class Monitor:
    chargers: list[SimCharger]
    limit_a: float
    lowered_at: float = -1e9
    worst: list[str] = field(default_factory=list)
    samples: int = 0

    def set_limit(self, limit_a: float, now: float) -> None:
        if limit_a < self.limit_a:
            self.lowered_at = now
        self.limit_a = limit_a

    async def run(self, clock: ScaledClock) -> None:
        while True:
            now = clock()
            totals = [sum(c.phase_currents_a()[p] for c in self.chargers) for p in range(3)]
            self.samples += 1
            if now - self.lowered_at > RESPONSE_S:
                for phase, amps in enumerate(totals):
                    if amps > self.limit_a + 1e-6:
                        self.worst.append(f"t={now:.2f}s L{phase + 1} {amps:.1f} A > {self.limit_a:g} A")
            await asyncio.sleep(0.02)


@dataclass
class Rig:
    site: SimulatedSite
    line: SimLine
    chargers: list[SimCharger]
    supervisor: Supervisor
    pool: BusPool
    monitor: Monitor
    clock: ScaledClock
    port: int
    state: Path

    async def stop_gateway(self) -> None:
        """The gateway stops as a process would: its tasks and its connections end."""
        await self.supervisor.stop()
        await self.pool.close()


def site_file(port: int, n: int, limit: float) -> dict[str, object]:
    return {
        "installation_limit_a": 100, "network_limit_a": limit, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "comm_timeout_s": 5,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i, "timeout_s": 0.3}}
                     for i in range(1, n + 1)],
    }


async def start_gateway(port: int, n: int, limit: float, state: Path) -> tuple[Supervisor, BusPool]:
    config, _ = parse_site(site_file(port, n, limit), "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a, JsonStore(state / "settings.json"))
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    await supervisor.start()
    await supervisor.wait_ready(5)
    return supervisor, pool


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = ScaledClock(1.0)
    site = SimulatedSite(clock)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    chargers = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 5))
    await site.start()
    assert line.server is not None
    port = line.server.port
    supervisor, pool = await start_gateway(port, 4, 48, tmp_path)
    monitor = Monitor(chargers, 48)
    watch = asyncio.create_task(monitor.run(clock))
    rig = Rig(site, line, chargers, supervisor, pool, monitor, clock, port, tmp_path)
    try:
        yield rig
        await asyncio.sleep(0.3)  # let the monitor see the state each test left behind
    finally:
        await cancel_and_wait(watch)
        await rig.stop_gateway()
        await site.stop()
    assert monitor.samples > 10
    assert not monitor.worst, monitor.worst[:5]


def car(name: str, limit: float = 32) -> VehicleSpec:
    return VehicleSpec(name, onboard_limit_a=limit, lag_s=0.3, battery_kwh=80, soc_start=0.2)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll the simulated devices (they have no events to wait on) until ``condition`` holds."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def setpoints(rig: Rig) -> list[float]:
    return [c.setpoint_a for c in rig.chargers]


async def test_cars_share_the_limit_and_follow_plug_in_unplug_and_limit_changes(rig: Rig) -> None:
    for charger, name in zip(rig.chargers[:3], "abc", strict=False):
        charger.plug(car(name))
    await until(lambda: setpoints(rig)[:3] == [16, 16, 16])
    rig.chargers[3].plug(car("d"))
    await until(lambda: setpoints(rig) == [12, 12, 12, 12])
    rig.chargers[0].unplug()
    await until(lambda: setpoints(rig) == [0, 16, 16, 16])

    rig.monitor.set_limit(30, rig.clock())
    rig.supervisor.apply(SetNetworkLimit(30), "test")
    await until(lambda: setpoints(rig) == [0, 10, 10, 10], timeout_s=2)
    status = rig.supervisor.status()
    assert status.network_limit_a == 30 and status.effective_limit_a == (30, 30, 30)
    assert [u.state for u in status.units][1:] == [Iec61851State.C] * 3


async def test_a_bad_command_is_refused_and_changes_nothing(rig: Rig) -> None:
    with pytest.raises(CommandRejected):
        rig.supervisor.apply(SetNetworkLimit(150), "test")
    assert rig.supervisor.status().network_limit_a == 48


async def test_a_charger_that_stops_answering_is_booked_and_rejoins(rig: Rig) -> None:
    for charger, name in zip(rig.chargers[:2], "ab", strict=False):
        charger.plug(car(name))
    await until(lambda: setpoints(rig)[:2] == [24, 24])
    assert rig.line.server is not None
    rig.line.server.set_fault(2, Fault(FaultKind.SILENT))
    await until(lambda: rig.supervisor.status().units[1].availability is Availability.UNAVAILABLE)
    unit = rig.supervisor.status().units[1]
    assert unit.unavailable_reason == "timeout" and unit.link.success_rate < 1
    rig.chargers[2].plug(car("c"))
    # cp2 stays booked at 24 A (its last setpoint, above its 12 A fail-safe): the newcomer gets the rest.
    await until(lambda: setpoints(rig)[2] == 12)
    assert setpoints(rig)[0] == 12
    rig.line.server.set_fault(2, Fault(FaultKind.NONE))
    await until(lambda: rig.supervisor.status().units[1].availability is Availability.AVAILABLE)
    await until(lambda: setpoints(rig)[:3] == [16, 16, 16])


async def test_garbage_readings_make_a_unit_unavailable_not_a_number(rig: Rig) -> None:
    rig.chargers[0].plug(car("a"))
    await until(lambda: setpoints(rig)[0] == 32)
    assert rig.line.server is not None
    rig.line.server.set_fault(1, Fault(FaultKind.GARBAGE))
    await until(lambda: rig.supervisor.status().units[0].availability is Availability.UNAVAILABLE)
    assert "invalid" in (rig.supervisor.status().units[0].unavailable_reason or "")
    assert all(c <= 100 for c in rig.supervisor.status().measured_a)
    rig.line.server.set_fault(1, Fault(FaultKind.NONE))
    await until(lambda: rig.supervisor.status().units[0].availability is Availability.AVAILABLE)


async def test_disable_stops_everyone_and_settings_survive_a_gateway_restart(rig: Rig) -> None:
    for charger, name in zip(rig.chargers[:2], "ab", strict=False):
        charger.plug(car(name))
    await until(lambda: setpoints(rig)[:2] == [24, 24])
    rig.monitor.set_limit(40, rig.clock())
    rig.supervisor.apply(SetNetworkLimit(40), "test")
    await until(lambda: setpoints(rig)[:2] == [20, 20])

    await rig.stop_gateway()  # the gateway dies; the chargers keep their setpoints, the cars keep charging
    assert setpoints(rig)[:2] == [20, 20]
    rig.supervisor, rig.pool = await start_gateway(rig.port, 4, 48, rig.state)
    assert rig.supervisor.status().network_limit_a == 40
    await asyncio.sleep(0.5)
    assert setpoints(rig)[:2] == [20, 20], "a restart must not drop running sessions"

    rig.supervisor.apply(SetEnabled(False), "test")
    await until(lambda: setpoints(rig) == [0, 0, 0, 0], timeout_s=2)
    assert all(u.availability is Availability.DISABLED for u in rig.supervisor.status().units)
