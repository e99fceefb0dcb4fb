"""``powershare run`` killed with SIGKILL keeps its history up to the last batch it committed.

The gateway is a real process leading simulated chargers on loopback Modbus TCP (in the test process, so the test
plugs and unplugs cars), with ``history.flush_interval_s: 1``. Once another reader of the database sees a finished
session, a running one and an installer's change committed, the process is killed without a word and started again
on the same state directory: all of it is there, the database opens without being set aside, and the session whose
car never left carries on as the same session.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.gateway_process import GatewayProcess
from support.web import until

from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.history.service import HISTORY_FILE

REGISTRY = ProfileRegistry.shipped()


def committed(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Sessions (unit, start, end, energy) and events (text, origin) as another reader of the file sees them."""
    if not path.exists():
        return [], []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sessions = db.execute("SELECT unit, start_s, end_s, energy_wh FROM sessions ORDER BY start_s").fetchall()
        events = db.execute("SELECT text, origin FROM events ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return [], []
    finally:
        db.close()
    return sessions, events


@pytest.fixture
async def chargers(tmp_path: Path) -> AsyncIterator[tuple[list[SimCharger], Path]]:
    site = SimulatedSite(time.monotonic)
    lines = [site.add_line(TcpListen("127.0.0.1", 0)) for _ in range(2)]
    sims = [site.add_chargers(line, REGISTRY.charger("powershare-sim"), (1,))[0] for line in lines]
    await site.start()
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({
        "installation_limit_a": 63, "network_limit_a": 48, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": f"cp{i + 1}", "profile": "powershare-sim", "comm_timeout_s": 3,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port, "timeout_s": 0.3}}
                     for i, line in enumerate(lines) if line.server is not None],
        "web": {"host": "127.0.0.1", "port": 0},  # never the default 8080: it may be taken
        "history": {"flush_interval_s": 1},
    }), encoding="utf-8")
    try:
        yield sims, config
    finally:
        await site.stop()


async def test_a_sigkill_keeps_sessions_and_events_up_to_the_last_batch(
        tmp_path: Path, chargers: tuple[list[SimCharger], Path]) -> None:
    sims, config = chargers
    state = tmp_path / "state"
    gateway = GatewayProcess(config, state, tmp_path / "gateway.log")
    database = state / HISTORY_FILE
    try:
        async with httpx.AsyncClient(base_url=await serving(gateway), timeout=10) as client:
            code = re.search(r"setup code (\S+)", gateway.text())
            assert code is not None
            setup = await client.post("/api/setup", json={"setup_code": code.group(1),
                                                          "password": "correct horse battery"})
            auth = {"Authorization": f"Bearer {setup.json()['token']}"}
            sims[0].plug(VehicleSpec("a", onboard_limit_a=32, lag_s=0.3, battery_kwh=80))
            await until(lambda: sims[0].setpoint_a > 0 and sims[0].phase_currents_a()[0] > 5, timeout_s=10)
            await asyncio.sleep(1.0)  # some energy
            sims[0].unplug()
            sims[1].plug(VehicleSpec("b", onboard_limit_a=32, lag_s=0.3, battery_kwh=80))
            response = await client.put("/api/network-limit", json={"limit_a": 30}, headers=auth)
            assert response.status_code == 200, response.text

        def written() -> bool:
            sessions, events = committed(database)
            done = [s for s in sessions if s[0] == "cp1" and s[2] is not None and s[3] > 0]
            running = [s for s in sessions if s[0] == "cp2" and s[2] is None]
            return bool(done and running and ("network limit 30 A", "web installer@127.0.0.1") in events)

        await until(written, timeout_s=15)
        before = committed(database)
        assert await gateway.stop(signal.SIGKILL) == -signal.SIGKILL

        [cp1] = [s for s in before[0] if s[0] == "cp1"]
        [cp2] = [s for s in before[0] if s[0] == "cp2"]
        async with httpx.AsyncClient(base_url=await serving(gateway), timeout=10) as client:
            for _ in range(200):  # until the new run has seen cp2's car: its count goes on from the kept one
                after = (await client.get("/api/sessions")).json()
                sessions = {s["unit"]: s for s in after["sessions"]}
                if sessions["cp2"]["energy_kwh"] * 1000 > cp2[3] + 1:
                    break
                await asyncio.sleep(0.05)
            events = (await client.get("/api/events")).json()
        assert sessions["cp2"]["energy_kwh"] * 1000 > cp2[3] + 1, "the new run carries cp2's session on"
        assert (sessions["cp1"]["start_s"], sessions["cp1"]["end_s"]) == (cp1[1], cp1[2])
        assert sessions["cp1"]["energy_kwh"] == round(cp1[3] / 1000, 3) > 0
        assert sessions["cp2"]["start_s"] == cp2[1] and sessions["cp2"]["end_s"] is None, \
            "the car never left: the same session carries on"
        assert after["total"] == 2
        assert {"text": "network limit 30 A", "origin": "web installer@127.0.0.1"}.items() <= \
            next(e for e in events if e["text"] == "network limit 30 A").items()
        assert [(t, o) for t, o in committed(database)[1]][:len(before[1])] == before[1], \
            "every event committed before the kill, in order"
        assert "corrupt" not in gateway.text() and not list(state.glob(f"{HISTORY_FILE}.corrupt-*"))
        assert await gateway.stop(signal.SIGTERM) == 0
    finally:
        await gateway.kill_if_running()


async def serving(gateway: GatewayProcess) -> str:
    """Start it; the web page's address once it serves."""
    found = await gateway.start(r"web page on (http://127\.0\.0\.1:\d+)/")
    return found.group(1)
