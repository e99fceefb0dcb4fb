"""How fast a setpoint reaches an OCPP follower, printed (never asserted): run
``python -m pytest tests/test_ocpp_followers_bench.py -q -s``.

* One SetChargingProfile round trip (``OcppCharger.write_setpoint`` until Accepted) over loopback, next to two
  baselines measured in the same run: a bare websocket ping/pong on the same connection (what the transport costs)
  and a Modbus setpoint write to the Modbus simulator over loopback TCP (what the other kind of follower costs).
* How long until a lower current is *seen* in the follower's reading (the controller frees current only then):
  the car's lag plus up to one MeterValueSampleInterval, against a Modbus follower read every poll.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import pytest
from support.ocpp_followers import car, until

from drivers.bus import BusPool
from drivers.modbus_charger import ModbusCharger
from drivers.model import ChargerCapabilities, ChargerReading
from drivers.ocpp.endpoint import EndpointSettings, OcppEndpoint
from drivers.ocpp.follower import OcppCharger
from drivers.ocpp.link import ChargePointLink
from drivers.ocpp.station import StationSettings
from drivers.profile import ProfileRegistry
from drivers.sim.clock import ScaledClock
from drivers.sim.ocpp_charger import SimOcppCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.transport import TcpEndpoint

KEY = "0123456789abcdef0123"
ROUND_TRIPS = 400
DECREASES = 3


async def timed(action: Callable[[int], Awaitable[object]], count: int) -> list[float]:
    await action(0)
    out = []
    for i in range(count):
        started = time.perf_counter()
        await action(i)
        out.append(time.perf_counter() - started)
    return out


def figures(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1e3:7.3f} ms  p99 {p99 * 1e3:7.3f} ms"


async def seen_down(read: Callable[[], Awaitable[ChargerReading]], write: Callable[[float], Awaitable[None]],
                    high: float, low: float) -> float:
    """From sending ``low`` (to a car seen drawing ``high``) to a reading that shows the car at ``low``."""
    async def settle(done: Callable[[float], bool]) -> None:
        while True:
            if done((await read()).current_a[0] or 0.0):
                return
            await asyncio.sleep(0.01)

    await write(high)
    await settle(lambda amps: amps >= high - 0.5)
    started = time.perf_counter()
    await write(low)
    await settle(lambda amps: amps <= low + 0.5)
    return time.perf_counter() - started


async def test_print_setpoint_latency(capsys: pytest.CaptureFixture[str]) -> None:
    clock = ScaledClock(1.0)
    registry = ProfileRegistry.shipped()
    site = SimulatedSite(clock)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    [modbus_sim] = site.add_chargers(line, registry.charger("powershare-sim"), [1])
    await site.start()
    assert line.server is not None
    pool = BusPool()
    modbus = ModbusCharger(registry.charger("powershare-sim"), pool.bus_for(TcpEndpoint("127.0.0.1", line.server.port)),
                           1, timeout_s=1.0, comm_timeout_s=30)
    async with OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [StationSettings("CP-1", KEY)]) as endpoint:
        sim = SimOcppCharger("CP-1", f"ws://127.0.0.1:{endpoint.port}", clock, password=KEY)
        await sim.start()
        try:
            station = endpoint.stations["CP-1"]
            await until(lambda: station.provisioning.done)
            ocpp = OcppCharger(station, 1, ChargerCapabilities(max_current_a=32))
            link = station.link
            assert isinstance(link, ChargePointLink)

            async def ping(_: int) -> None:
                await (await link.connection.ping())

            transport = await timed(ping, ROUND_TRIPS)
            profile = await timed(lambda i: ocpp.write_setpoint(16 + i % 2), ROUND_TRIPS)
            register = await timed(lambda i: modbus.write_setpoint(16 + i % 2), ROUND_TRIPS)

            sim.plug(car("a"))
            modbus_sim.plug(car("b"))
            await until(lambda: station.connectors[1].transaction_id is not None)
            ocpp_down = [await seen_down(ocpp.read, ocpp.write_setpoint, 24, 10) for _ in range(DECREASES)]
            modbus_down = [await seen_down(modbus.read, modbus.write_setpoint, 24, 10) for _ in range(DECREASES)]
        finally:
            await sim.stop()
            await pool.close()
            await site.stop()
    base = statistics.median(transport)
    with capsys.disabled():
        print(f"\nsetpoint round trip over loopback, {ROUND_TRIPS} each (baseline: websocket ping/pong, "
              f"p50 {base * 1e3:.3f} ms)")
        for name, seconds in (("websocket ping/pong", transport), ("OCPP SetChargingProfile", profile),
                              ("Modbus setpoint write", register)):
            print(f"  {name:26s} {figures(seconds)}  x{statistics.median(seconds) / base:6.1f} baseline")
        print(f"lower current seen in the reading (car lag 0.3 s; OCPP MeterValues every "
              f"{station.settings.meter_interval_s} s), {DECREASES} each")
        for name, seconds in (("OCPP follower", ocpp_down), ("Modbus follower", modbus_down)):
            print(f"  {name:26s} mean {statistics.mean(seconds):6.3f} s  max {max(seconds):6.3f} s")
    assert all(s > 0 for s in transport + profile + register)
