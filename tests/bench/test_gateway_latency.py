"""How fast the gateway acts and what it costs, with simulated chargers on loopback Modbus TCP. Prints figures;
asserts only that every change arrived. Skipped unless asked for (it takes about two minutes):

    POWERSHARE_BENCH=1 python -m pytest tests/bench -q -s
    python -m pytest tests/bench -q -s --benchmark-enable

* Latency: from ``apply(SetNetworkLimit)`` to the last charger's new setpoint written, as the simulated devices
  see it, for 6, 48 and 240 chargers (each on its own port, as TCP chargers each have their own address), over
  repeated changes that land at random points of the poll cycle. Baseline, in the same run: one bare pymodbus
  write to one simulated charger, and N of them in sequence.
* Cost: CPU share (process CPU time / wall time) and resident memory of ``powershare run`` polling 240 chargers
  every second, read from /proc, the simulator in a process of its own. Baseline: the same at 6 chargers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient
from support.paths import REPO
from support.sim_fleet import fleet, ports

from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from gateway.runtime.app import GatewayApp
from gateway.runtime.commands import SetNetworkLimit
from gateway.site.config import parse_site

ROOT = REPO
REGISTRY = ProfileRegistry.shipped()
HIGH_A, LOW_A = 10.0, 8.0
"""Each charger's share before and after a change (the network limit is N times this)."""
TICKS = os.sysconf("SC_CLK_TCK")


def site_file(chargers: list[int]) -> dict[str, Any]:
    n = len(chargers)
    return {
        "installation_limit_a": 32 * n, "network_limit_a": HIGH_A * n, "enabled": True,
        "chargers": [{"id": f"cp{i + 1}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port}}
                     for i, port in enumerate(chargers)],
    }


class Writes:
    """When each simulated charger last took a new setpoint (wrapped around the device's own write handler)."""

    def __init__(self, chargers: list[SimCharger]) -> None:
        self.at: dict[int, float] = {}
        for index, charger in enumerate(chargers):
            self._observe(index, charger)

    def _observe(self, index: int, charger: SimCharger) -> None:
        handle = charger.write

        def write(table: Any, address: int, values: Any, function_code: int) -> int | None:
            before = charger.setpoint_a
            result = handle(table, address, values, function_code)
            if charger.setpoint_a != before:
                self.at[index] = time.perf_counter()
            return result

        charger.write = write  # type: ignore[method-assign]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bare_write_s(port: int) -> float:
    """Median of one pymodbus write (FC6) to a simulated charger: the floor under every figure here."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    assert await client.connect()
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        assert not (await client.write_register(104, 1, device_id=1)).isError()
        samples.append(time.perf_counter() - started)
    client.close()
    return statistics.median(samples)


async def latencies(n: int, changes: int) -> tuple[list[float], float]:
    site = fleet(n)
    chargers = [c for line in site.lines for c in line.chargers.values()]
    await site.start()
    try:
        bare = await bare_write_s(ports(site)[0])
        config, _ = parse_site(site_file(ports(site)), "bench", REGISTRY.nameplate_a)
        app = GatewayApp.build(config, REGISTRY, state_dir=None)
        writes = Writes(chargers)
        rng = random.Random(n)
        samples = []
        async with app:
            await app.supervisor.wait_ready(30)
            await _settled(chargers, HIGH_A, 30)
            for change in range(changes):
                share = LOW_A if change % 2 == 0 else HIGH_A
                writes.at.clear()
                started = time.perf_counter()
                app.supervisor.apply(SetNetworkLimit(share * n), "bench")
                await _settled(chargers, share, 10)
                samples.append(max(writes.at.values()) - started)
                await asyncio.sleep(rng.uniform(0.3, 1.3))  # the next change lands elsewhere in the poll cycle
        return samples, bare
    finally:
        await site.stop()


async def _settled(chargers: list[SimCharger], share: float, timeout_s: float) -> None:
    """Until every simulated charger holds ``share`` (devices have no events to wait on; the write times are
    recorded by ``Writes``, so this polling does not blur the figures)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if all(abs(c.setpoint_a - share) <= 1e-6 for c in chargers):
                return
            await asyncio.sleep(0.001)


@pytest.mark.parametrize(("n", "changes"), [(6, 40), (48, 30), (240, 20)])
async def test_limit_change_to_last_setpoint(n: int, changes: int, capsys: pytest.CaptureFixture[str]) -> None:
    samples, bare = await latencies(n, changes)
    assert len(samples) == changes
    with capsys.disabled():
        print(f"\n{n:4d} chargers: limit change -> last setpoint written  p50 {percentile(samples, 0.5) * 1e3:7.1f} ms"
              f"  p99 {percentile(samples, 0.99) * 1e3:7.1f} ms  max {max(samples) * 1e3:7.1f} ms"
              f"  ({changes} changes; bare pymodbus write {bare * 1e3:.2f} ms, p50 = "
              f"{percentile(samples, 0.5) / (n * bare):.2f} x {n} bare writes in sequence)")


@pytest.fixture
def gateway_processes(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "bench")])}

    def start(n: int) -> subprocess.Popen[str]:
        sim = subprocess.Popen([sys.executable, str(ROOT / "tests" / "bench" / "sim_fleet.py"), str(n)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, text=True)
        started.append(sim)
        assert sim.stdout is not None
        fleet_ports = json.loads(sim.stdout.readline())["ports"]
        config = tmp_path / f"site-{n}.yaml"
        config.write_text(yaml.safe_dump(site_file(fleet_ports)), encoding="utf-8")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(config), "--state-dir",
             str(tmp_path / f"state-{n}")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(gateway)
        return gateway

    yield start
    for process in reversed(started):
        process.terminate()
        process.wait(timeout=10)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_cpu_and_memory_polling_every_second(gateway_processes: Any, capsys: pytest.CaptureFixture[str]) -> None:
    figures = {}
    for n in (6, 240):
        gateway = gateway_processes(n)
        time.sleep(10)  # start-up, first round, fail-safe programming
        assert gateway.poll() is None
        cpu0, wall0 = cpu_s(gateway.pid), time.monotonic()
        time.sleep(20)
        share = (cpu_s(gateway.pid) - cpu0) / (time.monotonic() - wall0)
        figures[n] = (share, rss_mb(gateway.pid))
    with capsys.disabled():
        for n, (share, rss) in figures.items():
            print(f"\n{n:4d} chargers polled every 1 s: CPU {share:6.1%} of one core, RSS {rss:6.1f} MB"
                  + (f"  (x{share / figures[6][0]:.1f} CPU, x{rss / figures[6][1]:.2f} RSS of 6 chargers)"
                     if n != 6 else ""))
