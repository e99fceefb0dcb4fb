"""A whole gateway for the web tests: simulated chargers over loopback Modbus TCP, the real supervisor and Modbus
drivers, the real web server on a free loopback port, and an HTTP client.

The site file starts with ``configured`` followers on units 1..n; the simulator serves ``units`` units on the same
endpoint, so the rest are there for the tests (and the page) to add.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.faces.web import WebServer
from gateway.runtime.follower_probe import FollowerProbe, Probe
from gateway.runtime.history.service import HISTORY_FILE, History
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore
from gateway.site.validation import site_rules
from support.clock import ManualClock

REGISTRY = ProfileRegistry.shipped()


@dataclass
class WebRig:
    site: SimulatedSite
    line: SimLine
    chargers: list[SimCharger]
    pool: BusPool
    supervisor: Supervisor
    web: WebServer
    modbus_port: int
    state: Path
    auth_clock: ManualClock
    client: httpx.AsyncClient
    history: History

    def follower(self, charger_id: str, unit: int, **extra: Any) -> dict[str, Any]:
        """A follower on the simulator's endpoint, as the add form would send it."""
        return {"id": charger_id, "profile": "powershare-sim",
                "transport": {"type": "tcp", "host": "127.0.0.1", "port": self.modbus_port, "unit": unit,
                              "timeout_s": 0.3}, "comm_timeout_s": 5, **extra}

    async def sign_in(self, password: str = "correct horse battery") -> dict[str, str]:
        """Set the first password (with the logged setup code) if need be; returns bearer headers."""
        if self.web.setup_code is not None:
            response = await self.client.post("/api/setup", json={"setup_code": self.web.setup_code,
                                                                   "password": password})
        else:
            response = await self.client.post("/api/session", json={"password": password})
        assert response.status_code == 200, response.text
        self.client.cookies.clear()  # the tests choose per request between cookie and bearer
        return {"Authorization": f"Bearer {response.json()['token']}"}


def site_file(port: int, configured: int, *, web: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "car park B", "installation_limit_a": 100, "network_limit_a": 32, "enabled": False,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "comm_timeout_s": 5,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i, "timeout_s": 0.3}}
                     for i in range(1, configured + 1)],
        "web": {"host": "127.0.0.1", "port": 0, **(web or {})},
    }


@contextlib.asynccontextmanager
async def web_rig(state: Path, *, configured: int = 2, units: int = 4, web: dict[str, Any] | None = None,
                  probe: Callable[[Probe, int], Probe] | None = None,
                  server_options: dict[str, Any] | None = None, cars: dict[int, VehicleSpec] | None = None,
                  edit: Callable[[dict[str, Any]], None] | None = None) -> AsyncIterator[WebRig]:
    """``probe`` may wrap the real probe, given the simulator's port (the OpenAPI run fences it to that);
    ``server_options`` go to ``WebServer`` (connection cap, head timeout); ``cars`` are plugged in (by unit) before
    the gateway starts; ``edit`` may change the site file before it is read."""
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    chargers = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, units + 1), cars)
    await site.start()
    try:
        assert line.server is not None
        port = line.server.port
        document = site_file(port, configured, web=web)
        if edit is not None:
            edit(document)
        async with _gateway(site, line, chargers, document, state, port, probe, server_options) as rig:
            yield rig
    finally:
        await site.stop()


@contextlib.asynccontextmanager
async def fleet_rig(state: Path, chargers: int, *, per_line: int = 50, per_circuit: int = 50,
                    charging_every: int = 2) -> AsyncIterator[WebRig]:
    """A large site for the page: ``chargers`` simulated units, ``per_line`` on each TCP endpoint (a Modbus unit
    id stops at 247), ``per_circuit`` on each distribution board, a car charging at every ``charging_every``-th;
    sharing on, the production tick (1 s)."""
    site = SimulatedSite(ScaledClock(1.0))
    profile = REGISTRY.charger("powershare-sim")
    lines, sims = [], []
    for first in range(0, chargers, per_line):
        line = site.add_line(TcpListen("127.0.0.1", 0))
        units = range(1, min(per_line, chargers - first) + 1)
        cars = {u: car(f"car{first + u}") for u in units if (first + u) % charging_every == 0}
        sims += site.add_chargers(line, profile, units, cars)
        lines.append(line)
    await site.start()
    try:
        circuits = (chargers + per_circuit - 1) // per_circuit
        entries = []
        for n in range(chargers):
            server = lines[n // per_line].server
            assert server is not None
            entries.append({"id": f"cp{n + 1:03d}", "profile": "powershare-sim",
                            "circuit": f"board-{n // per_circuit + 1}",
                            "transport": {"type": "tcp", "host": "127.0.0.1", "port": server.port,
                                          "unit": n % per_line + 1, "timeout_s": 0.5}})
        document = {"name": f"car park with {chargers} chargers", "installation_limit_a": 400,
                    "network_limit_a": min(400, 32 * chargers),
                    "enabled": True, "control": {"tick_s": 1.0},
                    "circuits": [{"id": f"board-{i + 1}", "limit_a": 125} for i in range(circuits)],
                    "chargers": entries, "web": {"host": "127.0.0.1", "port": 0}}
        assert lines[0].server is not None
        async with _gateway(site, lines[0], sims, document, state, lines[0].server.port, None, None) as rig:
            yield rig
    finally:
        await site.stop()


@contextlib.asynccontextmanager
async def _gateway(site: SimulatedSite, line: SimLine, chargers: list[SimCharger], document: dict[str, Any],
                   state: Path, port: int, probe: Callable[[Probe, int], Probe] | None,
                   server_options: dict[str, Any] | None) -> AsyncIterator[WebRig]:
    """The real supervisor, Modbus drivers, history and web server over a running simulated site (as
    ``GatewayApp`` assembles them; the history in ``state``)."""
    config, _ = parse_site(document, "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a, JsonStore(state / "settings.json"),
                            rules=site_rules(REGISTRY, state))
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    history = History(state / HISTORY_FILE, supervisor, tasks=supervisor.tasks)
    real_probe: Probe = FollowerProbe(REGISTRY, pool, max_transaction_s=0.5, max_probe_s=3.0)
    auth_clock = ManualClock()
    web_server = WebServer(supervisor, config, state, probe=probe(real_probe, port) if probe else real_probe,
                           profiles=REGISTRY, history=history, clock=auth_clock, tasks=supervisor.tasks,
                           **(server_options or {}))
    await supervisor.start()
    try:
        await supervisor.wait_ready(10)
        await history.start()
        try:
            await web_server.start()
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_server.port}", timeout=10) as client:
                    yield WebRig(site, line, chargers, pool, supervisor, web_server, port, state, auth_clock, client,
                                 history)
            finally:
                await web_server.stop()
        finally:
            await history.stop()
    finally:
        await supervisor.stop()
        await pool.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def car(name: str, limit: float = 32) -> VehicleSpec:
    return VehicleSpec(name, onboard_limit_a=limit, lag_s=0.3, battery_kwh=80, soc_start=0.2)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)
