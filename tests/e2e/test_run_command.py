"""``powershare run`` as a real process against simulated chargers on loopback Modbus TCP.

The chargers live in the test process (each on its own port, as TCP chargers each have their own address), so the
test can plug cars in, stop a charger's server and start it again on the same port, or make it answer garbage.
The gateway is a subprocess: it is SIGKILLed and restarted, and finally stopped with SIGTERM. A real pymodbus
client plays the BMS. Throughout, a monitor samples what the simulated vehicles physically draw: the site total
never exceeds the limit in force (bar the cars' response time right after the limit itself was lowered) and no
car ever draws more than its charger's breaker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient
from support.gateway_process import GatewayProcess

from drivers.aio import cancel_and_wait
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import SimServer, TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.cli.main import main
from gateway.cli.run import locked_state_dir
from gateway.runtime.app import BMS_LIMIT_FILE
from gateway.site.settings import PERSIST_INTERVAL_S

REGISTRY = ProfileRegistry.shipped()
RESPONSE_S = 1.0
BREAKERS_A = (32.0, 32.0, 32.0, 16.0)
AVAILABLE, UNAVAILABLE = 1, 0


@dataclass
class Monitor:
    chargers: list[SimCharger]
    limit_a: float
    lowered_at: float = -1e9
    violations: list[str] = field(default_factory=list)
    samples: int = 0

    def lower(self, limit_a: float) -> None:
        self.lowered_at = time.monotonic()
        self.limit_a = limit_a

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            currents = [c.phase_currents_a() for c in self.chargers]
            self.samples += 1
            for phase in range(3):
                total = sum(c[phase] for c in currents)
                if now - self.lowered_at > RESPONSE_S and total > self.limit_a + 1e-6:
                    self.violations.append(f"L{phase + 1} {total:.1f} A > {self.limit_a:g} A")
            for i, (drawn, breaker) in enumerate(zip(currents, BREAKERS_A, strict=True)):
                if max(drawn) > breaker + 1e-6:
                    self.violations.append(f"cp{i + 1} draws {max(drawn):.1f} A > breaker {breaker:g} A")
            await asyncio.sleep(0.02)


class Gateway(GatewayProcess):
    async def start_bms(self) -> int:
        """Start it and return the BMS face's port, once it listens."""
        found = await self.start(r"BMS face: Modbus TCP on 127\.0\.0\.1:(\d+)", timeout_s=10)
        return int(found.group(1))


@dataclass
class Rig:
    site: SimulatedSite
    lines: list[SimLine]
    chargers: list[SimCharger]
    monitor: Monitor
    gateway: Gateway
    bms: AsyncModbusTcpClient | None = None

    async def connect_bms(self, port: int) -> None:
        if self.bms is not None:
            self.bms.close()
        self.bms = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0, reconnect_delay=0)
        assert await self.bms.connect()

    async def inputs(self, address: int, count: int = 1) -> list[int]:
        assert self.bms is not None
        rr = await self.bms.read_input_registers(address, count=count, device_id=1)
        assert not rr.isError(), rr
        return list(rr.registers)

    async def availability(self) -> list[int]:
        return [(await self.inputs(1000 + 20 * i + 1))[0] for i in range(len(self.chargers))]

    def setpoints(self) -> list[float]:
        return [c.setpoint_a for c in self.chargers]

    async def restart_charger(self, index: int, down_s: float) -> None:
        """The charger's Modbus server goes away (power cut of its network card) and comes back on its port."""
        line = self.lines[index]
        assert line.server is not None
        port = line.server.port
        await line.server.stop()
        await asyncio.sleep(down_s)
        line.server = SimServer({**line.others, **line.chargers}, TcpListen("127.0.0.1", port))
        await line.server.start()


async def until(condition: Callable[[], object], timeout_s: float = 8.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


def car(name: str) -> VehicleSpec:
    return VehicleSpec(name, onboard_limit_a=32, lag_s=0.3, battery_kwh=500)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    site = SimulatedSite(time.monotonic)
    lines = [site.add_line(TcpListen("127.0.0.1", 0)) for _ in BREAKERS_A]
    chargers = [site.add_chargers(line, REGISTRY.charger("powershare-sim"), (1,))[0] for line in lines]
    await site.start()
    ports = [line.server.port for line in lines if line.server is not None]
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({
        "installation_limit_a": 63, "network_limit_a": 48, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": f"cp{i + 1}", "profile": "powershare-sim", "comm_timeout_s": 3,
                      "breaker_limit_a": breaker,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.3}}
                     for i, (port, breaker) in enumerate(zip(ports, BREAKERS_A, strict=True))],
        "bms": {"host": "127.0.0.1", "port": 0, "allow_write_from": ["127.0.0.1"]},
        "web": {"host": "127.0.0.1", "port": 0},  # never the default 8080: it may be taken
    }), encoding="utf-8")
    monitor = Monitor(chargers, 48)
    watch = asyncio.create_task(monitor.run())
    rig = Rig(site, lines, chargers, monitor, Gateway(config, tmp_path / "state", tmp_path / "gateway.log"))
    try:
        yield rig
    finally:
        if rig.bms is not None:
            rig.bms.close()
        process = rig.gateway.process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await cancel_and_wait(watch)
        await site.stop()
    assert monitor.samples > 100
    assert not monitor.violations, monitor.violations[:5]


async def test_the_gateway_process_through_sessions_faults_a_sigkill_and_a_sigterm(rig: Rig) -> None:
    cp = rig.chargers
    cp[0].plug(car("a"))
    cp[1].plug(car("b"))
    await rig.connect_bms(await rig.gateway.start_bms())
    await until(lambda: rig.setpoints() == [24, 24, 0, 0])
    cp[2].plug(car("c"))
    cp[3].plug(car("d"))
    await until(lambda: rig.setpoints() == [12, 12, 12, 12])
    cp[0].unplug()
    await until(lambda: rig.setpoints() == [0, 16, 16, 16])

    # The BMS lowers the network limit to 30.0 A (HR0, 0.1 A).
    rig.monitor.lower(30)
    assert rig.bms is not None
    assert not (await rig.bms.write_register(0, 300, device_id=1)).isError()
    await until(lambda: rig.setpoints() == [0, 10, 10, 10], timeout_s=3)

    # cp2 is cut off mid-session and comes back on the same port.
    restart = asyncio.create_task(rig.restart_charger(1, down_s=2.0))
    await until(lambda: _is(rig.availability(), [AVAILABLE, UNAVAILABLE, AVAILABLE, AVAILABLE]))
    await restart
    await until(lambda: _is(rig.availability(), [AVAILABLE] * 4))
    await until(lambda: rig.setpoints() == [0, 10, 10, 10])

    # cp3 answers garbage for a while.
    server = rig.lines[2].server
    assert server is not None
    server.set_fault(1, Fault(FaultKind.GARBAGE))
    await until(lambda: _is(rig.availability(), [AVAILABLE, AVAILABLE, UNAVAILABLE, AVAILABLE]))
    server.set_fault(1, Fault(FaultKind.NONE))
    await until(lambda: _is(rig.availability(), [AVAILABLE] * 4))

    # A BMS limit is saved coalesced (at most every PERSIST_INTERVAL_S, docs/bms.md): once it is on disk, the
    # gateway dies without a word; the chargers keep their setpoints and the BMS limit survives.
    await until(lambda: _saved_network_limit(rig.gateway.state) == 30, timeout_s=PERSIST_INTERVAL_S + 10)
    assert await rig.gateway.stop(signal.SIGKILL) == -signal.SIGKILL
    before = rig.setpoints()
    await rig.connect_bms(await rig.gateway.start_bms())
    assert (await rig.inputs(15)) == [630]
    assert rig.bms is not None
    assert (await rig.bms.read_holding_registers(0, device_id=1)).registers == [300]
    await until(lambda: _is(rig.inputs(2), [4]))  # every charger read again
    await asyncio.sleep(1.0)
    assert rig.setpoints() == before == [0, 10, 10, 10], "a restart must not drop running sessions"

    assert await rig.gateway.stop(signal.SIGTERM) == 0
    assert rig.gateway.text().rstrip().endswith("gateway.run: stopped")


async def test_a_kill_9_loses_at_most_the_bms_limits_written_since_the_last_save(rig: Rig) -> None:
    await rig.connect_bms(await rig.gateway.start_bms())
    assert rig.bms is not None
    rig.monitor.lower(30)
    assert not (await rig.bms.write_register(0, 300, device_id=1)).isError()
    await until(lambda: _saved_network_limit(rig.gateway.state) == 30, timeout_s=PERSIST_INTERVAL_S + 10)
    # Within the interval after that save: 25.0 A takes effect at once, and the gateway is killed before it is saved.
    rig.monitor.lower(25)
    assert not (await rig.bms.write_register(0, 250, device_id=1)).isError()
    await until(lambda: _is(rig.inputs(4), [250]))
    assert (await rig.inputs(13)) == [6]  # the BMS's own limit source binds
    assert await rig.gateway.stop(signal.SIGKILL) == -signal.SIGKILL
    assert _saved_network_limit(rig.gateway.state) == 30
    rig.monitor.limit_a = 30  # what the restarted gateway may let the chargers share: the limit saved before

    await rig.connect_bms(await rig.gateway.start_bms())
    assert (await rig.bms.read_holding_registers(0, device_id=1)).registers == [300]
    await until(lambda: _is(rig.inputs(4, 1), [300]))
    assert (await rig.inputs(13)) == [6]
    assert await rig.gateway.stop(signal.SIGTERM) == 0


def _saved_network_limit(state: Path) -> object:
    """The BMS's network limit as its source last saved it (``bms-limit.json``)."""
    path = state / BMS_LIMIT_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("limit_a")


async def _is(value: object, expected: list[int]) -> bool:
    assert asyncio.iscoroutine(value)
    return bool(await value == expected)


def test_a_broken_site_file_stops_the_start_with_every_problem(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("installation_limit_a: 40\nnetwork_limit_a: 50\nnetwrok: 1\n", encoding="utf-8")
    assert main(["run", "--config", str(path), "--state-dir", str(tmp_path / "state")]) == 1
    err = capsys.readouterr().err
    assert "site.yaml: netwrok: unknown key" in err
    assert not (tmp_path / "state").exists()


def test_an_unusable_or_busy_state_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("installation_limit_a: 40\nnetwork_limit_a: 30\n", encoding="utf-8")
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["run", "--config", str(path), "--state-dir", str(tmp_path / "file")]) == 1
    assert "state directory" in capsys.readouterr().err
    with locked_state_dir(tmp_path / "state"):
        assert main(["run", "--config", str(path), "--state-dir", str(tmp_path / "state")]) == 1
    assert "in use by another powershare gateway" in capsys.readouterr().err
