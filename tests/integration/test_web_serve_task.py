"""The page's HTTP server is a supervised task like the pollers: if it stops serving without being asked to, the
gateway shows FAULT naming it, and a new server listens again on the same port after the backoff.

The real supervisor, Modbus drivers and web server over loopback; the only thing made to fail is one tick of
uvicorn's main loop (what a bug in the server, or in what it runs, looks like from outside). Before, the task that
ran uvicorn was not owned by anyone: it ended, the page was gone, and the gateway said nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from support.web import until, web_rig

from gateway.faces.web import server as web_server
from gateway.runtime.read_model import GatewayHealth


async def test_a_web_server_that_stops_by_itself_shows_fault_and_serves_again_on_its_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = web_server._EmbeddedServer.on_tick
    failed: list[int] = []

    async def on_tick(self: web_server._EmbeddedServer, counter: int) -> bool:
        if not failed and counter > 0:
            failed.append(counter)
            raise RuntimeError("a bug in the server's tick")
        return await original(self, counter)

    async with web_rig(tmp_path / "state") as rig:
        url = f"http://127.0.0.1:{rig.web.port}/api/status"
        monkeypatch.setattr(web_server._EmbeddedServer, "on_tick", on_tick)
        await until(lambda: rig.supervisor.tasks.is_down(web_server.SERVE_TASK), timeout_s=5)
        status = rig.supervisor.status()
        assert status.health is GatewayHealth.FAULT
        assert web_server.SERVE_TASK in rig.supervisor.tasks.down

        async def answers() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as fresh:
                    return (await fresh.get(url)).status_code == 200
            except httpx.TransportError:
                return False

        async with asyncio.timeout(10):  # the first backoff is 1 s
            while not await answers():  # noqa: ASYNC110 - polling a peer over HTTP: there is no event to wait on
                await asyncio.sleep(0.1)
        assert rig.supervisor.tasks.restarts(web_server.SERVE_TASK) == 1
