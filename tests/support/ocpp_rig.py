"""A whole gateway with an OCPP client for the OCPP tests: simulated chargers over loopback Modbus TCP, the real
supervisor and drivers, and ``OcppClient`` connected to a central system under test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.faces.ocpp.client import OcppClient
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import SiteConfig, parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
CP_ID = "GW-0001"
KEY = "0123456789abcdef0123"


def site_data(port: int, n: int, ocpp: dict[str, Any], limit: float = 48,
              control: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "installation_limit_a": 100, "network_limit_a": limit, "enabled": True,
        "control": {"tick_s": 0.1, "vehicle_response_s": 0.3, **(control or {})},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "comm_timeout_s": 5,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i, "timeout_s": 0.3}}
                     for i in range(1, n + 1)],
        "ocpp": {"charge_point_id": CP_ID, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5,
                 "response_timeout_s": 5, **ocpp},
    }


def car(name: str, limit: float = 32) -> VehicleSpec:
    return VehicleSpec(name, onboard_limit_a=limit, lag_s=0.1, battery_kwh=80, soc_start=0.2)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


@dataclass
class Gateway:
    site: SimulatedSite
    chargers: list[SimCharger]
    port: int
    state: Path
    config: SiteConfig
    supervisor: Supervisor | None = None
    client: OcppClient | None = None
    pool: BusPool | None = None

    @property
    def ocpp(self) -> OcppClient:
        assert self.client is not None
        return self.client

    async def start(self, environ: dict[str, str] | None = None) -> None:
        settings = SiteSettings(self.config, REGISTRY.nameplate_a, JsonStore(self.state / "settings.json"))
        self.pool = BusPool()
        wiring = ModbusWiring(REGISTRY, settings, self.pool)
        self.supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
        self.client = OcppClient(self.supervisor, self.config, state_dir=self.state,
                                 nameplate_of=REGISTRY.nameplate_a, environ=environ)
        await self.supervisor.start()
        await self.client.start()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()
            self.client = None
        if self.supervisor is not None:
            await self.supervisor.stop()
            self.supervisor = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def setpoints(self) -> list[float]:
        return [c.setpoint_a for c in self.chargers]


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, ocpp: dict[str, Any], n: int = 2, limit: float = 48,
                  start: bool = True, environ: dict[str, str] | None = None,
                  control: dict[str, Any] | None = None) -> Any:
    clock = ScaledClock(1.0)
    site = SimulatedSite(clock)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    chargers = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, n + 1))
    await site.start()
    assert line.server is not None
    config, _ = parse_site(site_data(line.server.port, n, ocpp, limit, control), "site.yaml", REGISTRY.nameplate_a)
    gw = Gateway(site, chargers, line.server.port, tmp_path, config)
    try:
        if start:
            await gw.start(environ)
        yield gw
    finally:
        await gw.stop()
        await site.stop()
