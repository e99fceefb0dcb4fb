"""The gateway as ``powershare run`` serves it (``serve_site_file``: a site file on disk, a state directory, the
in-process restart), in the test's event loop, over simulated Modbus chargers on loopback; the installer password
set beforehand, so the rig can sign in again after a restart (sessions live in memory)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from gateway.cli.run import serve_site_file
from gateway.faces.web.auth import PasswordStore
from gateway.site.validation import load_checked_site
from support.web import REGISTRY, free_port, site_file

PASSWORD = "correct horse battery"


@dataclass
class RunRig:
    path: Path
    """The site file."""
    state: Path
    line: SimLine
    modbus_port: int
    client: httpx.AsyncClient
    stop: asyncio.Event
    task: asyncio.Task[int]

    async def sign_in(self) -> dict[str, str]:
        response = await self.client.post("/api/session", json={"password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    async def commissioning(self) -> dict[str, Any]:
        response = await self.client.get("/api/commissioning")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def restarted(self, headers: dict[str, str], timeout_s: float = 30.0) -> dict[str, Any]:
        """Ask for a restart and wait for the new gateway's page; returns its commissioning state."""
        before = (await self.commissioning())["instance"]
        response = await self.client.post("/api/restart", headers=headers)
        assert response.status_code == 202, response.text
        async with asyncio.timeout(timeout_s):
            while True:
                assert not self.task.done(), f"the gateway ended instead of restarting: {self.task.result()}"
                with contextlib.suppress(httpx.TransportError):
                    response = await self.client.get("/api/commissioning")
                    if response.status_code == 200 and response.json()["instance"] != before:
                        body: dict[str, Any] = response.json()
                        return body
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_gateway(tmp_path: Path, *, configured: int = 2, units: int = 4,
                          extra: dict[str, Any] | None = None) -> AsyncIterator[RunRig]:
    """A site file with ``configured`` of ``units`` simulated chargers, served as ``run`` serves it."""
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, units + 1))
    await site.start()
    try:
        assert line.server is not None
        web_port = free_port()
        document = {**site_file(line.server.port, configured, web={"port": web_port}), **(extra or {})}
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        state = tmp_path / "state"
        await PasswordStore(state).set(PASSWORD)
        async with gateway_on(path, state, web_port, line) as rig:
            yield rig
    finally:
        await site.stop()


@contextlib.asynccontextmanager
async def gateway_on(path: Path, state: Path, web_port: int, line: SimLine) -> AsyncIterator[RunRig]:
    """``serve_site_file`` for the site file at ``path`` (its web page on ``web_port``), until the block ends."""
    assert line.server is not None
    config, _ = load_checked_site(path, REGISTRY)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_site_file(path, config, REGISTRY, state, stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as client:
            async with asyncio.timeout(20):
                while True:
                    assert not task.done(), f"the gateway did not start: {task.result()}"
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/api/auth")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            yield RunRig(path, state, line, line.server.port, client, stop, task)
    finally:
        stop.set()
        assert await task == 0
