"""The two central systems the OCPP client is tested against, behind one small interface:

* ``PythonPeer``: the project's own ``gateway.sim.csms.CentralSystem`` (the ``ocpp`` library's server side);
* ``NodePeer``: ``tests/ocpp_peer/cs.js``, the npm package ``ocpp-rpc`` in strict mode: an independent
  implementation with its own schemas and validator. It is installed by ``npm ci`` in ``tests/ocpp_peer`` (the CI
  script does it); without node or the package the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from ocpp.exceptions import OCPPError

from drivers.aio import cancel_and_wait
from gateway.sim.csms import CallFailed, CentralSystem

PEER_DIR = Path(__file__).resolve().parents[1] / "ocpp_peer"
WAIT_S = 5.0


class PeerCallFailed(RuntimeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Peer(Protocol):
    name: str

    def url(self) -> str: ...

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    def calls(self, action: str) -> list[dict[str, Any]]: ...

    async def wait_for(self, action: str, where: Callable[[dict[str, Any]], bool] | None = None,
                       count: int = 1) -> dict[str, Any]: ...

    async def set_boot(self, status: str, interval: int) -> None: ...

    async def go_offline(self) -> None: ...

    async def go_online(self) -> None: ...


def node_skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed: the ocpp-rpc interoperability tests need it"
    if not (PEER_DIR / "node_modules" / "ocpp-rpc").is_dir():
        return "ocpp-rpc is not installed: run `npm ci` in tests/ocpp_peer (.ci/run does)"
    return None


class PythonPeer:
    name = "csms"

    def __init__(self, csms: CentralSystem, cp_id: str) -> None:
        self.csms = csms
        self.cp_id = cp_id
        self._port = 0

    def url(self) -> str:
        return self.csms.url()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            await self.csms.wait_connected(self.cp_id)
        try:
            return await self.csms.call(self.cp_id, action, payload)
        except CallFailed as exc:
            error = self.csms.exchanges[-1].error or "timeout"
            name = error.split(":", 1)[0]
            codes = {cls.__name__: cls.code for cls in OCPPError.__subclasses__()}
            raise PeerCallFailed(codes.get(name, name), str(exc)) from None

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.csms.received if r.action == action]

    async def wait_for(self, action: str, where: Callable[[dict[str, Any]], bool] | None = None,
                       count: int = 1) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [p for p in self.calls(action) if where is None or where(p)]
                if len(found) >= count:
                    return found[count - 1]
                await asyncio.sleep(0.02)

    async def set_boot(self, status: str, interval: int) -> None:
        self.csms.boot_status = status
        self.csms.heartbeat_interval = interval

    async def go_offline(self) -> None:
        self._port = self.csms.port
        await self.csms.stop()

    async def go_online(self) -> None:
        self.csms.requested_port = self._port
        await self.csms.start()


class NodePeer:
    name = "ocpp-rpc"

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.port = 0
        self.scheme = "ws"
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/ocpp"

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.events.append(json.loads(line))
            self._changed.set()
            self._changed = asyncio.Event()

    async def event(self, where: Callable[[dict[str, Any]], bool], start: int = 0) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                for event in self.events[start:]:
                    if where(event):
                        return event
                await self._changed.wait()

    async def _command(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        await self.event(lambda e: e["event"] == "connected")
        command_id = next(self._ids)
        await self._command({"cmd": "call", "id": command_id, "method": action, "params": payload})
        answer = await self.event(lambda e: e.get("id") == command_id and e["event"] in ("result", "error"))
        if answer["event"] == "error":
            raise PeerCallFailed(answer["code"], answer["message"])
        return dict(answer["result"])

    async def raw(self, message: str) -> None:
        await self._command({"cmd": "raw", "message": message})

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e["event"] == "call" and e["method"] == action]

    def invalid(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "invalid"]

    async def wait_for(self, action: str, where: Callable[[dict[str, Any]], bool] | None = None,
                       count: int = 1) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [p for p in self.calls(action) if where is None or where(p)]
                if len(found) >= count:
                    return found[count - 1]
                await self._changed.wait()

    async def set_boot(self, status: str, interval: int) -> None:
        await self._command({"cmd": "set", "boot": status, "interval": interval})

    async def go_offline(self) -> None:
        await self._command({"cmd": "set", "online": False})
        await self.event(lambda e: e["event"] == "disconnected")

    async def go_online(self) -> None:
        await self._command({"cmd": "set", "online": True})


@contextlib.asynccontextmanager
async def node_peer(**options: Any) -> AsyncIterator[NodePeer]:
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    process = await asyncio.create_subprocess_exec(
        "node", str(PEER_DIR / "cs.js"), json.dumps(options), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=PEER_DIR)
    peer = NodePeer(process)
    peer.scheme = "wss" if "tls" in options else "ws"
    peer._reader = asyncio.create_task(peer._read())
    try:
        listening = await peer.event(lambda e: e["event"] in ("listening", "fatal"))
        if listening["event"] == "fatal":
            raise RuntimeError(f"the ocpp-rpc peer failed: {listening['message']}")
        peer.port = int(listening["port"])
        yield peer
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await cancel_and_wait(peer._reader)


@contextlib.asynccontextmanager
async def python_peer(cp_id: str, *, password: str | None = None, boot: str = "Accepted", interval: int = 300,
                      ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[PythonPeer]:
    async with CentralSystem(port=0, password=password, boot_status=boot, heartbeat_interval=interval,
                             ssl_context=ssl_context, response_timeout=WAIT_S) as csms:
        yield PythonPeer(csms, cp_id)


@contextlib.asynccontextmanager
async def any_peer(kind: str, cp_id: str, *, password: str | None = None, boot: str = "Accepted",
                   interval: int = 300) -> AsyncIterator[Peer]:
    if kind == "node":
        options: dict[str, Any] = {"boot": boot, "interval": interval}
        if password is not None:
            options["password"] = password
        async with node_peer(**options) as node:
            yield node
    else:
        async with python_peer(cp_id, password=password, boot=boot, interval=interval) as python:
            yield python
