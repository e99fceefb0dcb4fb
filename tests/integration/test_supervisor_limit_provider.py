"""The supervisor's hook for external limit sources (``gateway.core.limits.LimitProvider``), with the real supervisor
and simulated chargers over loopback Modbus TCP: caps merge with the installer's by taking the least, a provider's
change is acted on at once, and so is a change it announced with ``next_change``, however long the tick."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.ocpp_rig import REGISTRY, car, until

from drivers.bus import BusPool
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.core.limits import LimitSource, PerPhase, external_limits
from gateway.runtime.commands import SetUnitLimit
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import parse_site
from gateway.site.settings import SiteSettings


@dataclass
class Provider:
    site: PerPhase | None = None
    caps: dict[str, float] = field(default_factory=dict)
    step_at: float | None = None
    """At this wall time the site limit drops to ``site_after``."""
    site_after: PerPhase | None = None
    wakers: list[Callable[[], None]] = field(default_factory=list)

    def site_limit_a(self, wall: float) -> PerPhase | None:
        if self.step_at is not None and wall >= self.step_at:
            return self.site_after
        return self.site

    def unit_caps_a(self, wall: float) -> Mapping[str, float]:
        return self.caps

    def next_change(self, wall: float) -> float | None:
        return self.step_at if self.step_at is not None and wall < self.step_at else None

    def on_change(self, wake: Callable[[], None]) -> None:
        self.wakers.append(wake)

    def changed(self) -> None:
        for wake in self.wakers:
            wake()


@dataclass
class Rig:
    supervisor: Supervisor
    provider: Provider
    chargers: list[SimCharger]

    def setpoints(self) -> list[float]:
        return [c.setpoint_a for c in self.chargers]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    chargers = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 3))
    for charger, name in zip(chargers, "ab", strict=True):
        charger.plug(car(name))
    await site.start()
    assert line.server is not None
    data = {"installation_limit_a": 100, "network_limit_a": 48, "enabled": True,
            "control": {"tick_s": 5.0, "vehicle_response_s": 0.3},
            "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "comm_timeout_s": 30,
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port, "unit": i,
                                        "timeout_s": 0.3}} for i in (1, 2)]}
    config, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a)
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    provider = Provider()
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings, limit_providers=[provider])
    await supervisor.start()
    try:
        await supervisor.wait_ready(5)
        rig = Rig(supervisor, provider, chargers)
        await until(lambda: rig.setpoints() == [24, 24])
        yield rig
    finally:
        await supervisor.stop()
        await pool.close()
        await site.stop()


async def test_a_change_is_acted_on_at_once_not_at_the_next_tick(rig: Rig) -> None:
    rig.provider.site = (20.0, 20.0, 20.0)
    rig.provider.changed()
    await until(lambda: rig.setpoints() == [10, 10], timeout_s=1.0)  # the tick is 5 s
    status = rig.supervisor.status()
    assert status.effective_limit_a == (20, 20, 20) and status.limit_source is LimitSource.OCPP


async def test_unit_caps_merge_with_the_installers_by_taking_the_least(rig: Rig) -> None:
    rig.supervisor.apply(SetUnitLimit("cp1", 16), "test")
    rig.provider.caps = {"cp1": 20.0, "cp2": 10.0}
    rig.provider.changed()
    await until(lambda: rig.setpoints() == [16, 10], timeout_s=1.0)
    rig.provider.caps = {"cp1": 8.0}
    rig.provider.changed()
    await until(lambda: rig.setpoints()[0] == 8, timeout_s=1.0)
    rig.provider.caps = {"cp1": 0.0}
    rig.provider.changed()
    await until(lambda: rig.setpoints()[0] == 0, timeout_s=1.0)


async def test_a_change_announced_by_next_change_is_met_on_time(rig: Rig) -> None:
    rig.provider.site_after = (12.0, 12.0, 12.0)
    step_at = rig.provider.step_at = time.time() + 0.7
    rig.provider.changed()  # the new next_change is known from now on; nothing changes yet
    await asyncio.sleep(0.55)
    assert rig.setpoints() == [24, 24]
    # met at the announced change, 0.7 s in: long before the next tick (5 s) would have come
    await until(lambda: rig.setpoints() == [6, 6], timeout_s=2.0)
    assert rig.provider.step_at == step_at


def test_external_limits_take_the_least_of_every_provider() -> None:
    a = Provider(site=(30.0, 20.0, 30.0), caps={"x": 10.0})
    b = Provider(site=(25.0, 25.0, 25.0), caps={"x": 16.0, "y": 6.0})
    site, caps = external_limits([a, b], 0.0, {"x": 12.0, "z": 5.0})
    assert site == (25.0, 20.0, 25.0)
    assert caps == {"x": 10.0, "y": 6.0, "z": 5.0}
    assert external_limits([], 0.0, {"z": 5.0}) == (None, {"z": 5.0})
