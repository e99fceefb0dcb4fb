"""kill -9 of the gateway at every step of an OCPP session: nothing lost, nothing sent twice.

The gateway (``serve``: supervisor + OCPP client) runs in a child process against simulated chargers and the
project's central system, both in this process on loopback. At each step (start, meter values, stop) the central
system is made unreachable, the child is started, the step happens, and the child is SIGKILLed as soon as the
step's message is in its ledger; then the central system is reachable again and a fresh child delivers. The central
system must see each StartTransaction and StopTransaction exactly once and no MeterValues with transactionId -1.
Between steps a child is only killed once its outbox is empty, so no kill lands between an answer and its record
(the one window no protocol closes; see ``gateway.faces.ocpp.outbox``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from support.ocpp_rig import REGISTRY, car, until
from support.paths import REPO

from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.sim.csms import CentralSystem

CP = "KILL-1"
CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from drivers.profile import ProfileRegistry
    from gateway.cli.run import serve
    from gateway.site.config import parse_site
    registry = ProfileRegistry.shipped()
    config, _ = parse_site(json.loads(Path(sys.argv[1]).read_text()), "site.yaml", registry.nameplate_a)
    sys.exit(asyncio.run(serve(config, registry, Path(sys.argv[2]))))
""")


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


class Child:
    def __init__(self, site: Path, state: Path) -> None:
        self.site = site
        self.state = state
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen([sys.executable, "-c", CHILD, str(self.site), str(self.state)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        self.kills += 1

    def queued(self, action: str) -> bool:
        return bool(_rows(self.state / "ocpp" / "charge-point.db",
                          f"SELECT seq FROM messages WHERE action = '{action}'"))

    def drained(self) -> bool:
        db = self.state / "ocpp" / "charge-point.db"
        return bool(_rows(db, "SELECT name FROM documents")) and not _rows(db, "SELECT seq FROM messages")


async def _wait(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    await until(condition, timeout_s)


async def test_kill_9_at_every_step_of_a_session_loses_and_repeats_nothing(tmp_path: Path) -> None:
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    [charger] = site.add_chargers(line, REGISTRY.charger("powershare-sim"), [1])
    await site.start()
    child: Child | None = None
    try:
        assert line.server is not None
        async with CentralSystem(port=0) as csms:
            def seen(action: str) -> list[dict[str, object]]:
                return [r.payload for r in csms.received if r.action == action]

            data = {"installation_limit_a": 63, "network_limit_a": 32, "enabled": True,
                    "control": {"tick_s": 0.1},
                    "chargers": [{"id": "cp1", "profile": "powershare-sim", "comm_timeout_s": 5,
                                  "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port,
                                                "unit": 1, "timeout_s": 0.3}}],
                    "ocpp": {"url": csms.url(), "charge_point_id": CP, "reconnect_min_s": 0.05,
                             "reconnect_max_s": 0.2, "meter_values": {"sample_interval_s": 1}}}
            (tmp_path / "site.json").write_text(json.dumps(data))
            child = Child(tmp_path / "site.json", tmp_path / "state")

            async def step(action: str, cause: Callable[[], None]) -> None:
                """Offline: cause the step, kill as soon as its message is stored; online: a new child delivers."""
                assert child is not None
                csms.allowed = frozenset()  # the central system refuses the connection: the gateway queues
                child.start()
                await asyncio.sleep(0.5)  # the child's first control steps
                cause()
                await _wait(lambda: child.queued(action))
                child.kill()
                csms.allowed = None
                child.start()
                await _wait(lambda: any(True for _ in seen(action)) and child.drained())
                child.kill()

            await step("StartTransaction", lambda: charger.plug(car("a", limit=16)))
            await step("MeterValues", lambda: None)
            await step("StopTransaction", charger.unplug)
    finally:
        if child is not None and child.process is not None:
            child.kill()
        await site.stop()
    starts, stops = seen("StartTransaction"), seen("StopTransaction")
    samples = seen("MeterValues")
    print(f"\nkill -9: {child.kills if child else 0} kills; central system saw {len(starts)} StartTransaction, "
          f"{len(stops)} StopTransaction, {len(samples)} MeterValues")
    assert len(starts) == 1 and len(stops) == 1
    assert stops[0]["transactionId"] == 1
    assert samples and all(s.get("transactionId") == 1 for s in samples if "transactionId" in s)
    assert all(s.get("transactionId") != -1 for s in samples)
