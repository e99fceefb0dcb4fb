"""The control loop steps once per polling round however many buses there are (not once per bus), and a command
still acts at once. Twelve chargers, each on its own loopback Modbus TCP endpoint, so twelve pollers; each answers
a little later than the one before, so the buses finish their rounds at different moments, as on a real site."""

from __future__ import annotations

import asyncio
import time

from drivers.aio import cancel_and_wait
from drivers.profile import ProfileRegistry
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.app import GatewayApp
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.read_model import SiteStatus
from gateway.site.config import parse_site

REGISTRY = ProfileRegistry.shipped()
BUSES = 12
TICK_S = 0.25


async def test_one_step_per_round_across_many_buses_and_commands_at_once() -> None:
    site = SimulatedSite(time.monotonic)
    for i in range(BUSES):
        line = site.add_line(TcpListen("127.0.0.1", 0))
        site.add_chargers(line, REGISTRY.charger("powershare-sim"), (1,), {1: VehicleSpec(f"car {i}", lag_s=0.1)})
    await site.start()
    for i, line in enumerate(site.lines):
        assert line.server is not None
        line.server.set_fault(1, Fault(FaultKind.LATE, late_s=0.012 * (i + 1)))
    chargers = site.chargers()
    ports = [line.server.port for line in site.lines if line.server is not None]
    config, _ = parse_site({
        "installation_limit_a": 32 * BUSES, "network_limit_a": 10 * BUSES, "enabled": True,
        "control": {"tick_s": TICK_S},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port}} for i, port in enumerate(ports)],
    }, "site.yaml", REGISTRY.nameplate_a)
    app = GatewayApp.build(config, REGISTRY, state_dir=None)
    published: list[SiteStatus] = []

    async def count() -> None:
        async for status in app.supervisor.updates():
            published.append(status)

    try:
        async with app:
            await app.supervisor.wait_ready(5)
            counter = asyncio.create_task(count())
            await asyncio.sleep(0)
            started = time.monotonic()
            await asyncio.sleep(2.0)
            rounds = (time.monotonic() - started) / TICK_S
            steps = len(published)
            # Every round may add one step; twelve buses finishing at different moments must not add twelve.
            assert rounds / 2 <= steps <= rounds + 2, (steps, rounds)

            app.supervisor.apply(SetNetworkLimit(8 * BUSES), "test")
            async with asyncio.timeout(TICK_S):  # acted on before the next tick could have come
                while True:  # the simulated devices have no events to wait on
                    if all(c.setpoint_a == 8 for c in chargers):
                        break
                    await asyncio.sleep(0.005)
            await cancel_and_wait(counter)
    finally:
        await site.stop()
