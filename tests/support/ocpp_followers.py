"""A mixed site for tests: simulated Modbus chargers on loopback TCP and simulated OCPP chargers connecting to the
gateway's real endpoint, the real supervisor leading both, and a monitor of the cars' physical currents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.aio import cancel_and_wait
from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.ocpp_charger import SimOcppCharger
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import SiteWiring
from gateway.site.config import parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
PASSWORD = "0123456789abcdef0123"
RESPONSE_S = 1.0
"""The simulated cars follow a new pilot within 0.3 s; the monitor allows 1 s after the limit itself is lowered."""

PhaseReader = Callable[[], tuple[float, float, float]]


@dataclass
class Monitor:
    """Samples the physical currents every 20 ms; any sum above the limit (outside the response time after the
    limit itself was lowered) is a violation."""

    readers: Sequence[PhaseReader]
    limit_a: float
    clock: Callable[[], float]
    lowered_at: float = -1e9
    worst: list[str] = field(default_factory=list)
    samples: int = 0

    def set_limit(self, limit_a: float) -> None:
        if limit_a < self.limit_a:
            self.lowered_at = self.clock()
        self.limit_a = limit_a

    async def run(self) -> None:
        while True:
            now = self.clock()
            totals = [sum(read()[p] for read in self.readers) for p in range(3)]
            self.samples += 1
            if now - self.lowered_at > RESPONSE_S:
                for phase, amps in enumerate(totals):
                    if amps > self.limit_a + 1e-6:
                        self.worst.append(f"t={now:.2f}s L{phase + 1} {amps:.1f} A > {self.limit_a:g} A")
            await asyncio.sleep(0.02)


def ocpp_charger(cid: str, cp_id: str, **transport: Any) -> dict[str, Any]:
    return {"id": cid, "comm_timeout_s": 5,
            "transport": {"type": "ocpp", "charge_point_id": cp_id, "password_file": "cp.key",
                          "max_current_a": 32, "timeout_s": 1.0, **transport}}


def modbus_charger(cid: str, port: int, unit: int) -> dict[str, Any]:
    return {"id": cid, "profile": "powershare-sim", "comm_timeout_s": 5,
            "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": unit, "timeout_s": 0.3}}


def site_file(chargers: list[dict[str, Any]], limit: float, **extra: Any) -> dict[str, Any]:
    return {"installation_limit_a": 100, "network_limit_a": limit, "enabled": True,
            "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
            "ocpp_endpoint": {"host": "127.0.0.1", "port": 0}, "chargers": chargers, **extra}


@dataclass
class Gateway:
    supervisor: Supervisor
    wiring: SiteWiring

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.wiring.ocpp.endpoint.port}/ocpp"

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.wiring.stop()
        await self.wiring.modbus.pool.close()


async def start_gateway(data: dict[str, Any], state: Path, *, before_supervisor: Callable[[Gateway], Any]
                        | None = None) -> Gateway:
    """The gateway on ``data``; ``before_supervisor`` runs once the endpoint listens (to start the OCPP sims)."""
    (state / "cp.key").write_text(PASSWORD + "\n")
    config, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a, JsonStore(state / "settings.json"))
    wiring = SiteWiring(REGISTRY, settings, BusPool(), state)
    await wiring.start()
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    gateway = Gateway(supervisor, wiring)
    if before_supervisor is not None:
        await before_supervisor(gateway)
    await supervisor.start()
    await supervisor.wait_ready(5)
    return gateway


def car(name: str, limit: float = 32, phases: int = 3) -> VehicleSpec:
    return VehicleSpec(name, onboard_limit_a=limit, phases=phases, lag_s=0.3, battery_kwh=80, soc_start=0.2)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0, show: Callable[[], object] | None = None
                ) -> None:
    """Poll the simulated devices (they have no events to wait on) until ``condition`` holds; on a timeout the
    failure shows ``show()``."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout_s:g} s: {show() if show else ''}") from None


def pilots(chargers: Sequence[SimCharger | SimOcppCharger]) -> list[float]:
    """What each charger offers its car now (Modbus: its setpoint; OCPP: what its profiles give)."""
    return [c.setpoint_a if isinstance(c, SimCharger) else c.pilot_a() for c in chargers]


@contextlib.asynccontextmanager
async def watching(monitor: Monitor) -> Any:
    task = asyncio.create_task(monitor.run())
    try:
        yield monitor
        await asyncio.sleep(0.3)  # let the monitor see the state the test left behind
    finally:
        await cancel_and_wait(task)
    assert monitor.samples > 10
    assert not monitor.worst, monitor.worst[:5]


def sim_ocpp(cp_id: str, url: str, clock: ScaledClock, **options: Any) -> SimOcppCharger:
    return SimOcppCharger(cp_id, url, clock, password=PASSWORD, reconnect_s=0.2, **options)
