"""End to end: a BMS (pymodbus client) -> the BMS face -> the supervisor -> Modbus drivers -> simulated chargers.

Everything is real and on loopback: two simulated chargers on one Modbus TCP endpoint, the generic profile-driven
driver, the supervisor with its control loop, and the face. Real time, with a 0.1 s control tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from pymodbus.client import AsyncModbusTcpClient
from support.bms import bms_config

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.server import SimServer, TcpListen
from drivers.sim.vehicle import VehicleSpec
from drivers.transport import BusOptions
from gateway.core.limits import LimitSource
from gateway.faces.bms.register_map import MAP_VERSION
from gateway.faces.bms.server import BmsServer
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import SiteConfig
from gateway.site.settings import SiteSettings

REGISTRY = ProfileRegistry.shipped()
PROFILE = REGISTRY.charger("powershare-sim")
FAST = BusOptions(connect_timeout_s=0.5, backoff_initial_s=0.01, backoff_max_s=0.05)
UNIT = 1


@dataclass
class Rig:
    sim: list[SimCharger]
    supervisor: Supervisor
    client: AsyncModbusTcpClient

    async def inputs(self, address: int, count: int = 1) -> list[int]:
        rr = await self.client.read_input_registers(address, count=count, device_id=UNIT)
        assert not rr.isError(), rr
        return list(rr.registers)

    async def until(self, check: Callable[[], object], timeout_s: float = 5.0) -> None:
        """Polls like a BMS would, until ``check`` holds (assertion errors say what it still sees)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result is not False:
                    return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    chargers = [SimCharger(PROFILE, time.monotonic, serial=f"SIM-{i}") for i in (1, 2)]
    chargers[0].plug(VehicleSpec("car", lag_s=0.1, battery_kwh=500))
    sim = SimServer({1: chargers[0], 2: chargers[1]}, TcpListen())
    await sim.start()
    site = SiteConfig.model_validate({
        "installation_limit_a": 40, "network_limit_a": 30, "enabled": True,
        "control": {"tick_s": 0.1},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "breaker_limit_a": 16,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": sim.port, "unit": i}}
                     for i in (1, 2)]})
    settings = SiteSettings(site, REGISTRY.nameplate_a)
    pool = BusPool(FAST)

    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    bms = BmsServer(supervisor, bms_config())
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(sim.stop)
        stack.push_async_callback(pool.close)
        await supervisor.start()
        stack.push_async_callback(supervisor.stop)
        await bms.start()
        stack.push_async_callback(bms.stop)
        assert bms.tcp_address is not None
        host, port = bms.tcp_address
        client = AsyncModbusTcpClient(host, port=port, timeout=1, retries=0, reconnect_delay=0)
        stack.callback(client.close)
        await supervisor.wait_ready(5)
        assert await client.connect()
        yield Rig(chargers, supervisor, client)


async def test_the_bms_reads_the_live_site_and_its_limit_reaches_the_charger(rig: Rig) -> None:
    assert (await rig.inputs(0, 2)) == [MAP_VERSION, 2]
    await rig.until(lambda: rig.sim[0].pilot_a > 10)  # the car charges at its 16 A breaker limit

    rr = await rig.client.write_register(0, 100, device_id=UNIT)  # network limit 10.0 A
    assert not rr.isError() and rr.registers == [100]
    assert (await rig.client.read_holding_registers(0, device_id=UNIT)).registers == [100]

    async def limited() -> bool:
        effective, = await rig.inputs(4)
        setpoint, = await rig.inputs(1002)
        assert effective == 100 and setpoint <= 100, (effective, setpoint)
        return True

    await rig.until(limited)
    await rig.until(lambda: rig.sim[0].pilot_a <= 10)
    assert rig.supervisor.bms.limit_a == 10.0 and rig.supervisor.settings.config.network_limit_a == 30.0
    assert (await rig.inputs(13)) == [LimitSource.BMS]  # the BMS's own limit source binds
    assert (await rig.inputs(16, 2)) == [0, 0]  # invariant_violations: the gateway never broke the invariant


async def test_the_supervisors_own_rules_refuse_through_the_face(rig: Rig) -> None:
    # 35 A is below the installation limit (the face's range) but above what the two 16 A chargers could draw.
    rr = await rig.client.write_register(0, 350, device_id=UNIT)
    assert rr.isError() and rr.exception_code == 3
    rr = await rig.client.write_register(101, 200, device_id=UNIT)  # above cp2's 16 A breaker
    assert rr.isError() and rr.exception_code == 3
    assert rig.supervisor.bms.limit_a is None and rig.supervisor.settings.config.network_limit_a == 30.0
    assert (await rig.client.read_holding_registers(0, device_id=UNIT)).registers == [300]
    assert not (await rig.client.write_register(101, 80, device_id=UNIT)).isError()
    assert rig.supervisor.settings.unit_limits_a == {"cp2": 8.0}


async def test_the_watchdog_falls_back_and_a_heartbeat_restores_the_network_limit(rig: Rig) -> None:
    rr = await rig.client.write_registers(0, [200, 1, 2, 60], device_id=UNIT)  # 20 A, watchdog 2 s, fallback 6 A
    assert not rr.isError()

    async def source_and_limit(source: LimitSource, limit: int) -> bool:
        assert await rig.inputs(13) == [source] and await rig.inputs(4) == [limit]
        return True

    await rig.until(lambda: source_and_limit(LimitSource.BMS, 200))
    await rig.until(lambda: source_and_limit(LimitSource.BMS_FALLBACK, 60), timeout_s=4)  # no heartbeat for 2 s
    assert not (await rig.client.write_register(4, 1, device_id=UNIT)).isError()
    # Checked well within the next 2 s, before the watchdog could expire again.
    await rig.until(lambda: source_and_limit(LimitSource.BMS, 200), timeout_s=1.5)


def _session_block(departure_s: int | None, energy_kwh: float | None) -> list[int]:
    """HR2000 + 3·i as a BMS writes it: UTC UNIX seconds, high word first, then 0.1 kWh (65535 words: none)."""
    departure = 0xFFFF_FFFF if departure_s is None else departure_s
    energy = 0xFFFF if energy_kwh is None else round(energy_kwh * 10)
    return [departure >> 16, departure & 0xFFFF, energy]


async def _one_charges_the_other_waits(rig: Rig, charging: int) -> bool:
    waiting = 1 - charging
    assert rig.sim[charging].pilot_a >= 6 and rig.sim[waiting].pilot_a == 0, (rig.sim[0].pilot_a, rig.sim[1].pilot_a)
    assert await rig.inputs(1000 + 20 * waiting + 13) == [1]  # IR "waiting"
    return True


async def test_a_departure_written_by_the_bms_is_the_need_the_controller_serves(rig: Rig) -> None:
    # 10 A for two cars: one at a time. cp1's car came first and keeps its turn (15 min by default).
    assert not (await rig.client.write_register(0, 100, device_id=UNIT)).isError()
    rig.sim[1].plug(VehicleSpec("van", lag_s=0.1, battery_kwh=500))
    await rig.until(lambda: _one_charges_the_other_waits(rig, charging=0))

    departure = int(time.time()) + 3600
    rr = await rig.client.write_registers(2003, _session_block(departure, 20.0), device_id=UNIT)  # charger 1: cp2
    assert not rr.isError(), rr
    assert (await rig.client.read_holding_registers(2000, count=6, device_id=UNIT)).registers == \
        _session_block(None, None) + _session_block(departure, 20.0)
    await rig.until(lambda: (rig.supervisor.status().units[1].departure_s,
                             rig.supervisor.status().units[1].energy_wanted_kwh) == (departure, 20.0))

    # cp2's van must leave within the hour and cannot get 20 kWh in time even at its cap: it goes first.
    await rig.until(lambda: _one_charges_the_other_waits(rig, charging=1), timeout_s=10)
    assert (await rig.inputs(16, 2)) == [0, 0]

    # Cleared (both "none"): back to the usual order, in which cp2 now holds its turn.
    assert not (await rig.client.write_registers(2003, _session_block(None, None), device_id=UNIT)).isError()
    await rig.until(lambda: rig.supervisor.status().units[1].departure_s is None)
    assert rig.supervisor.status().units[1].energy_wanted_kwh is None


@pytest.mark.parametrize(("ahead_s", "energy_kwh", "code"), [
    (-60, 20.0, 3),  # departure in the past
    (8 * 86_400, 20.0, 3),  # more than 7 days ahead
    (None, 0.0, 3),  # no energy: the API's rule is "more than 0"
    (None, 1000.1, 3),  # above 1000 kWh
    (3600, 20.0, 2),  # written without the departure's first register: half a 32-bit value
], ids=["past", "too-far", "zero-energy", "too-much-energy", "half-departure"])
async def test_a_session_value_the_rule_refuses_is_an_exception_and_changes_nothing(
        rig: Rig, ahead_s: int | None, energy_kwh: float, code: int) -> None:
    good = _session_block(int(time.time()) + 7200, 12.5)
    assert not (await rig.client.write_registers(2000, good, device_id=UNIT)).isError()
    await rig.until(lambda: rig.supervisor.status().units[0].energy_wanted_kwh == 12.5)
    events = rig.supervisor.recent_events()

    # The bad block for cp1 comes with a good one for cp2 in the same request: none of it may be applied.
    bad = _session_block(None if ahead_s is None else int(time.time()) + ahead_s, energy_kwh)
    request = bad + _session_block(int(time.time()) + 3600, 5.0)
    start = 2000
    if code == 2:
        start, request = 2001, request[1:]
    rr = await rig.client.write_registers(start, request, device_id=UNIT)
    assert rr.isError() and rr.exception_code == code
    assert (await rig.client.read_holding_registers(2000, count=6, device_id=UNIT)).registers == \
        good + _session_block(None, None)
    await asyncio.sleep(0.3)  # a few control rounds later, still nothing changed
    units = rig.supervisor.status().units
    assert (units[0].energy_wanted_kwh, units[1].departure_s, units[1].energy_wanted_kwh) == (12.5, None, None)
    assert rig.supervisor.recent_events() == events
