"""Issue 12: a flood of idle connections must not exhaust the gateway's file handles.

``powershare run`` runs as a real process with its open-file limit cut to 256 (soft and hard, set in the child
before it starts), against a simulated Modbus TCP charger. The test opens many more idle connections to the BMS face
and to the web page than that limit could hold, then shows that a new BMS client is answered, the page loads, the
charger reconnects after its server restarts, and the log stays a few lines long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from support.paths import REPO

from drivers.profile import ProfileRegistry
from drivers.sim.server import SimServer, TcpListen
from drivers.sim.site import SimulatedSite

REGISTRY = ProfileRegistry.shipped()
FILE_LIMIT = 256
IDLE_BMS = 600
IDLE_WEB = 300


def _low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


async def _read_input(port: int, address: int) -> int | None:
    """IR``address`` read by a new client; None for an exception (no charger block before the first step)."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(struct.pack(">HHHBBHH", 1, 0, 6, 1, 4, address, 1))
        await writer.drain()
        async with asyncio.timeout(5):
            header = await reader.readexactly(7)
            body = await reader.readexactly(struct.unpack(">HHHB", header)[2] - 1)
        if body[0] != 4:
            return None
        return int(struct.unpack(">H", body[2:4])[0])
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _until_available(bms_port: int, timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while await _read_input(bms_port, 1001) != 1:  # noqa: ASYNC110  (another process's state)
            await asyncio.sleep(0.1)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[int, int, Path, SimulatedSite]]:
    site = SimulatedSite(time.monotonic)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    site.add_chargers(line, REGISTRY.charger("powershare-sim"), (1,))
    await site.start()
    assert line.server is not None
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({
        "installation_limit_a": 63, "network_limit_a": 32, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": "cp1", "profile": "powershare-sim", "comm_timeout_s": 3,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port,
                                    "timeout_s": 0.3}}],
        "bms": {"host": "127.0.0.1", "port": 0, "allow_write_from": ["127.0.0.1"]},
        "web": {"host": "127.0.0.1", "port": 0},
    }), encoding="utf-8")
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "run", "--config", str(config), "--state-dir",
            str(tmp_path / "state"), cwd=REPO, stdout=out, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
            preexec_fn=_low_file_limit)
    try:
        async with asyncio.timeout(15):
            while True:
                text = log.read_text(errors="replace")
                bms = re.search(r"BMS face: Modbus TCP on 127\.0\.0\.1:(\d+)", text)
                web = re.search(r"web page on http://127\.0\.0\.1:(\d+)/", text)
                if bms and web:
                    break
                assert process.returncode is None, text
                await asyncio.sleep(0.05)
        yield int(bms.group(1)), int(web.group(1)), log, site
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await site.stop()


async def test_idle_connection_floods_leave_bms_web_and_chargers_working(
        gateway: tuple[int, int, Path, SimulatedSite]) -> None:
    bms_port, web_port, log, site = gateway
    await _until_available(bms_port)
    lines_before = len(log.read_text(errors="replace").splitlines())
    idle: list[asyncio.StreamWriter] = []
    try:
        for port, count in ((bms_port, IDLE_BMS), (web_port, IDLE_WEB)):
            for _ in range(count):
                async with asyncio.timeout(10):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                idle.append(writer)
        await asyncio.sleep(0.5)

        assert await _read_input(bms_port, 0) == 1  # a new BMS client: IR0, the map version
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as client:
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/api/status")).status_code == 200
        # The simulated charger lives in this process, whose loop was busy opening the flood: it may have missed a
        # poll meanwhile. It is polled on, and back at once.
        await _until_available(bms_port)
        line = site.lines[0]
        assert line.server is not None
        port = line.server.port
        await line.server.stop()  # the charger goes away and comes back: the gateway must open a new socket
        async with asyncio.timeout(15):
            while await _read_input(bms_port, 1001) != 0:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        line.server = SimServer({**line.others, **line.chargers}, TcpListen("127.0.0.1", port))
        await line.server.start()
        await _until_available(bms_port)
    finally:
        for writer in idle:
            writer.close()
    text = log.read_text(errors="replace")
    new_lines = text.splitlines()[lines_before:]
    assert "Traceback" not in text
    assert len(new_lines) < 40, new_lines[:40]
