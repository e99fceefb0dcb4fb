"""A fleet of simulated chargers for the gateway benchmark, each on its own loopback port (as TCP chargers each
have their own address), every one with a car plugged in. Run as a process:

    python tests/bench/sim_fleet.py N      # prints {"ports": [...]} once listening, serves until SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from drivers.profile import ProfileRegistry
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec


def fleet(n: int) -> SimulatedSite:
    site = SimulatedSite(time.monotonic)
    profile = ProfileRegistry.shipped().charger("powershare-sim")
    for i in range(n):
        line = site.add_line(TcpListen("127.0.0.1", 0))
        site.add_chargers(line, profile, (1,), {1: VehicleSpec(f"car {i}", lag_s=0.1, battery_kwh=10_000)})
    return site


def ports(site: SimulatedSite) -> list[int]:
    return [line.server.port for line in site.lines if line.server is not None]


async def main(n: int) -> None:
    site = fleet(n)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await site.start()
    try:
        print(json.dumps({"ports": ports(site)}), flush=True)
        await stop.wait()
    finally:
        await site.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
