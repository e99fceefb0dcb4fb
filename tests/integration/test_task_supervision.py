"""A poller or the control task that dies of a bug (anything but a ``DriverError``) is noticed: its chargers show as
unavailable and are booked as unreachable, the gateway reports FAULT, the task is restarted with backoff, and the
buses are still closed at stop. The real supervisor, the real Modbus driver and a simulated charger over loopback;
only the driver's fail-safe programming (or its setpoint encoding) is made to raise ``ValueError``, as a profile
whose encoder refuses a value does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.bus import BusPool
from drivers.modbus_charger import ModbusCharger
from drivers.profile import ProfileRegistry
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.app import GatewayApp
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.endpoints import endpoint_of
from gateway.runtime.history.service import History
from gateway.runtime.read_model import Availability, GatewayHealth, SiteStatus
from gateway.runtime.supervisor import ChargerHandle, Supervisor
from gateway.runtime.tasks import TaskSupervisor
from gateway.runtime.wiring import SiteWiring
from gateway.site.config import ChargerConfig, ModbusTransport, parse_site
from gateway.site.settings import SiteSettings

REGISTRY = ProfileRegistry.shipped()


class FaultyCharger(ModbusCharger):
    """The real driver, with a bug switched on and off by the test."""

    failsafe_bug = False
    setpoint_bug = False

    async def configure_failsafe(self, current_a: float, timeout_s: float) -> None:
        if self.failsafe_bug:
            raise ValueError("failsafe_current: 6.5 is not a multiple of the resolution")
        await super().configure_failsafe(current_a, timeout_s)

    async def write_setpoint(self, current_a: float) -> None:
        if self.setpoint_bug:
            raise ValueError("setpoint: cannot encode")
        await super().write_setpoint(current_a)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the supervisor has no event for each of these conditions
            await asyncio.sleep(0.01)


async def gateway(sim: SimulatedSite) -> tuple[GatewayApp, dict[str, FaultyCharger]]:
    await sim.start()
    ports = [line.server.port for line in sim.lines if line.server is not None]
    config, _ = parse_site({
        "installation_limit_a": 64, "network_limit_a": 32, "enabled": True, "control": {"tick_s": 0.05},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port}} for i, port in enumerate(ports)],
    }, "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a, None)
    pool = BusPool()
    wiring = SiteWiring(REGISTRY, settings, pool, Path.cwd())
    drivers: dict[str, FaultyCharger] = {}

    def make_driver(charger: ChargerConfig) -> ChargerHandle:
        assert isinstance(charger.transport, ModbusTransport) and charger.profile is not None
        endpoint = endpoint_of(charger.transport)
        driver = FaultyCharger(REGISTRY.charger(charger.profile), pool.bus_for(endpoint), charger.transport.unit,
                               timeout_s=charger.transport.timeout_s, comm_timeout_s=charger.comm_timeout_s)
        drivers[charger.id] = driver
        return ChargerHandle(driver, endpoint.key)

    tasks = TaskSupervisor(first_backoff_s=0.02, most_backoff_s=0.05, settle_s=0.3)  # pollers settle by rounds
    supervisor = Supervisor(settings, make_driver, ratings_of=wiring.ratings, tasks=tasks)
    history = History(None, supervisor, tasks=tasks)
    return GatewayApp(REGISTRY, settings, pool, supervisor, wiring, history), drivers


def unit(status: SiteStatus, cid: str) -> Availability:
    return next(u.availability for u in status.units if u.id == cid)


def two_chargers() -> SimulatedSite:
    sim = SimulatedSite(time.monotonic)
    profile = REGISTRY.charger("powershare-sim")
    for i in range(2):
        line = sim.add_line(TcpListen("127.0.0.1", 0))
        sim.add_chargers(line, profile, (1,), {1: VehicleSpec(f"car {i}", lag_s=0.05, battery_kwh=1000)})
    return sim


async def test_a_poller_crash_books_its_unit_unreachable_shows_fault_and_restarts_until_it_runs_again(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")  # the in-process demo tests raise the gateway logger's level
    sim = two_chargers()
    app, drivers = await gateway(sim)
    supervisor = app.supervisor
    try:
        drivers["cp0"].failsafe_bug = True
        await app.start()
        await until(lambda: supervisor.status().health is GatewayHealth.FAULT)
        status = supervisor.status()
        assert unit(status, "cp0") is Availability.UNAVAILABLE
        assert "ValueError" in (next(u for u in status.units if u.id == "cp0").unavailable_reason or "")
        assert unit(status, "cp1") is Availability.AVAILABLE  # the other bus goes on
        poller = next(n for n in supervisor.tasks.names() if n.startswith("poll") and n in supervisor.tasks.down)
        await until(lambda: supervisor.tasks.restarts(poller) >= 3)  # restarted, and crashing again each time
        assert supervisor.status().health is GatewayHealth.FAULT
        assert unit(supervisor.status(), "cp0") is Availability.UNAVAILABLE
        booked = {v.id: v for v in supervisor._controller.views(time.monotonic())}
        assert not booked["cp0"].reachable  # booked as unreachable by the controller
        tracebacks = [r for r in caplog.records if r.exc_info is not None and poller in r.getMessage()]
        assert len(tracebacks) == 1  # logged once with its traceback, not at every restart

        drivers["cp0"].failsafe_bug = False  # the bug goes away: the poller runs, settles, and all is well again
        await until(lambda: supervisor.status().health is GatewayHealth.OK
                    and unit(supervisor.status(), "cp0") is Availability.AVAILABLE)
    finally:
        await app.stop()
        await sim.stop()


async def test_stop_closes_the_buses_while_a_poller_is_down() -> None:
    sim = two_chargers()
    app, drivers = await gateway(sim)
    try:
        drivers["cp0"].failsafe_bug = True
        await app.start()
        await until(lambda: app.supervisor.status().health is GatewayHealth.FAULT)
        buses = app.pool.buses
        assert len(buses) == 2 and all(bus.connected for bus in buses)
    finally:
        await app.stop()
        await sim.stop()
    assert not any(bus.connected for bus in buses)
    assert app.supervisor.tasks.names() == []


async def test_a_control_task_crash_shows_fault_and_restarts_while_polling_goes_on() -> None:
    sim = two_chargers()
    app, drivers = await gateway(sim)
    supervisor = app.supervisor
    try:
        await app.start()
        await supervisor.wait_ready(5)
        drivers["cp1"].setpoint_bug = True
        supervisor.apply(SetNetworkLimit(20), "test")  # a new setpoint for every charger: cp1's write raises
        await until(lambda: supervisor.tasks.is_down("control"))
        assert supervisor.status().health is GatewayHealth.FAULT
        assert supervisor.tasks.restarts("control") >= 1
        drivers["cp1"].setpoint_bug = False
        await until(lambda: supervisor.status().health is GatewayHealth.OK)  # restarted and settled
        supervisor.apply(SetNetworkLimit(16), "test")  # control runs again: a new limit reaches cp0
        await until(lambda: sim.chargers()[0].setpoint_a == 8)
    finally:
        await app.stop()
        await sim.stop()
    assert not any(bus.connected for bus in app.pool.buses)


class CrashingFace:
    """A face whose loop dies of a bug a moment after it started, as the faces' loops run: owned by the gateway's
    supervisor of tasks."""

    def __init__(self, app: GatewayApp) -> None:
        self.tasks = app.supervisor.tasks

    async def start(self) -> None:
        self.tasks.start("face loop", self._loop)

    async def stop(self) -> None:
        await self.tasks.stop("face loop")

    async def _loop(self) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("a bug in a face")


async def test_a_crashing_face_shows_fault_and_never_stops_control() -> None:
    sim = two_chargers()
    app, _ = await gateway(sim)
    app.faces.append(CrashingFace(app))
    try:
        await app.start()
        await app.supervisor.wait_ready(5)
        await until(lambda: app.supervisor.status().health is GatewayHealth.FAULT)
        app.supervisor.apply(SetNetworkLimit(14), "test")
        await until(lambda: all(c.setpoint_a == 7 for c in sim.chargers()))
        assert app.supervisor.tasks.restarts("face loop") >= 1
    finally:
        await app.stop()
        await sim.stop()
    assert not any(bus.connected for bus in app.pool.buses)
