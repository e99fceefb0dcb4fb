"""A figure, not a timed assertion: from a BMS write of HR0 to the last charger's setpoint written, 6 chargers.

Six simulated chargers (real Modbus TCP) with cars, the real supervisor at its production tick (1 s) and the BMS
face; a real Modbus client lowers and raises the network limit in turn. A lowering is acted on at once (decreases
need no headroom); a raising waits until the cars have been seen to come down, so it includes their response.
Run with ``pytest tests/test_bms_latency.py -s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable

from pymodbus.client import AsyncModbusTcpClient
from support.bms import bms_config

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.faces.bms.server import BmsServer
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import SiteConfig
from gateway.site.settings import SiteSettings

REGISTRY = ProfileRegistry.shipped()
ROUNDS = 10


async def test_time_from_an_hr0_write_to_the_last_setpoint_written() -> None:
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    cars = {u: VehicleSpec(f"car{u}", lag_s=0.2, battery_kwh=500) for u in range(1, 7)}
    chargers = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 7), cars)
    await site.start()
    assert line.server is not None
    config = SiteConfig.model_validate({
        "installation_limit_a": 100, "network_limit_a": 60, "enabled": True,
        "chargers": [{"id": f"cp{u}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port, "unit": u}}
                     for u in range(1, 7)]})
    settings = SiteSettings(config, REGISTRY.nameplate_a)
    wiring = ModbusWiring(REGISTRY, settings, BusPool())
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    bms = BmsServer(supervisor, bms_config())
    client: AsyncModbusTcpClient | None = None
    lowering: list[float] = []
    raising: list[float] = []
    try:
        await supervisor.start()
        await supervisor.wait_ready(5)
        await bms.start()
        assert bms.tcp_address is not None
        client = AsyncModbusTcpClient(bms.tcp_address[0], port=bms.tcp_address[1], timeout=2, retries=0)
        assert await client.connect()
        await until(lambda: all(c.setpoint_a == 10 for c in chargers), 10)
        for _ in range(ROUNDS):
            for register_value, each_a, figures in ((360, 6.0, lowering), (600, 10.0, raising)):
                start = time.perf_counter()
                answer = await client.write_register(0, register_value, device_id=1)
                assert not answer.isError()
                await until(lambda each=each_a: all(c.setpoint_a == each for c in chargers), 10)
                figures.append((time.perf_counter() - start) * 1000)
    finally:
        if client is not None:
            client.close()
        with contextlib.suppress(Exception):
            await bms.stop()
        await supervisor.stop()
        await site.stop()
    for name, figures in (("lower 60 -> 36 A", lowering), ("raise 36 -> 60 A", raising)):
        ordered = sorted(figures)
        print(f"\nHR0 write to last of 6 setpoints, {name}: median {statistics.median(ordered):.1f} ms, "
              f"max {ordered[-1]:.1f} ms over {len(ordered)} writes")
    assert len(lowering) == len(raising) == ROUNDS


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)
