"""A bounded fuzz and flood suite against one in-process gateway (issue 12), loopback only, about half a minute.

The real supervisor leads simulated Modbus TCP chargers; the real BMS and web faces serve it. Each attack runs on
its own, then the suite checks that nothing a refused request carried was applied (the settings file and the
status are byte-for-byte what they were) and that the gateway still answers. It prints a table: attack, count,
result, and the longest gap between two published control steps while the attack ran (the tick is 0.2 s). The
gaps are printed figures, not assertions: they depend on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.bms import bms_config
from support.web import WebRig, web_rig

from gateway.faces.bms.server import BmsServer

ATTACKER_SOURCE = "127.0.0.1"
BMS_ALLOWED = "127.0.0.2"
"""The BMS face admits writes from this address only: every write the attacker sends must be refused."""


def mbap(tid: int, pdu: bytes, unit: int = 1) -> bytes:
    return struct.pack(">HHHB", tid & 0xFFFF, 0, len(pdu) + 1, unit) + pdu


@dataclass
class Row:
    attack: str
    count: int
    result: str
    longest_gap_s: float


class StepGaps:
    """The longest interval between two published snapshots since ``reset``."""

    def __init__(self, rig: WebRig) -> None:
        self._rig = rig
        self._last = time.monotonic()
        self.longest = 0.0
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        async for _ in self._rig.supervisor.updates():
            now = time.monotonic()
            self.longest = max(self.longest, now - self._last)
            self._last = now

    def reset(self) -> None:
        self._last = time.monotonic()
        self.longest = 0.0

    def result(self) -> float:
        """The longest gap, counting the one still open (an attack that ended before the next step)."""
        return max(self.longest, time.monotonic() - self._last)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[WebRig, BmsServer]]:
    async with web_rig(tmp_path, server_options={"max_connections": 32}) as rig:
        bms = BmsServer(rig.supervisor, bms_config(allow_write_from=[BMS_ALLOWED]), max_connections=16)
        await bms.start()
        try:
            yield rig, bms
        finally:
            await bms.stop()


async def _exchange(address: tuple[str, int], payload: bytes, answers: int, silence_s: float = 2.0) -> int:
    """Send ``payload`` in one write and count the answers that come back (until ``answers`` or a silence)."""
    reader, writer = await asyncio.open_connection(*address)
    got = 0
    try:
        writer.write(payload)
        await writer.drain()
        with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            while got < answers:
                async with asyncio.timeout(silence_s):
                    header = await reader.readexactly(7)
                    await reader.readexactly(struct.unpack(">HHHB", header)[2] - 1)
                got += 1
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return got


def _refused_writes(rng: random.Random, count: int) -> list[bytes]:
    """Writes of every kind, all of which the face must refuse (wrong client) or reject (bad values/functions)."""
    frames = []
    for k in range(count):
        kind = k % 5
        if kind == 0:
            pdu = struct.pack(">BHH", 6, rng.randrange(0, 5), rng.randrange(0, 0x10000))
        elif kind == 1:
            values = [rng.randrange(0, 0x10000) for _ in range(rng.randrange(1, 6))]
            pdu = struct.pack(f">BHHB{len(values)}H", 16, 0, len(values), 2 * len(values), *values)
        elif kind == 2:
            pdu = struct.pack(">BHHHHBH", 23, 10, 2, 0, 1, 2, 100)  # refused read half: nothing written
        elif kind == 3:
            pdu = struct.pack(">BHHH", 22, 0, 0, 0x64)
        else:
            pdu = struct.pack(">BHH", 6, 100 + rng.randrange(0, 4), rng.randrange(0, 0x10000))
        frames.append(mbap(k, pdu))
    return frames


def _fuzz(rng: random.Random, count: int) -> list[bytes]:
    """Random PDUs behind valid MBAP headers (random function codes, lengths and bodies)."""
    return [mbap(k, bytes([rng.randrange(0, 256)]) + rng.randbytes(rng.randrange(0, 12))) for k in range(count)]


async def test_fuzz_and_flood_change_nothing_and_the_gateway_keeps_stepping(
        rig: tuple[WebRig, BmsServer], capsys: pytest.CaptureFixture[str]) -> None:
    web, bms = rig
    await web.sign_in("correct horse battery")
    assert bms.tcp_address is not None
    address = bms.tcp_address
    port = web.web.port
    assert port is not None
    rng = random.Random(12)
    gaps = StepGaps(web)
    rows: list[Row] = []

    def state() -> tuple[str, tuple[object, ...]]:
        s = web.supervisor.status()
        path = web.state / "settings.json"
        return (path.read_text() if path.exists() else "", (s.network_limit_a, s.enabled, s.bms_watchdog_s,
                                                            s.bms_fallback_limit_a, tuple(u.limit_a for u in s.units)))

    async def attack(name: str, count: int, run: Callable[[], Awaitable[str]]) -> None:
        before = state()
        gaps.reset()
        outcome = await run()
        longest = gaps.result()
        assert state() == before, name
        assert (await web.client.get("/api/status")).status_code == 200, name
        assert await _exchange(address, mbap(1, struct.pack(">BHH", 4, 0, 1)), 1) == 1, name
        rows.append(Row(name, count, f"{outcome}; nothing changed", longest))

    async def pipelined_refused_writes() -> str:
        frames = _refused_writes(rng, 2000)
        answered = 0
        for start in range(0, len(frames), 100):
            answered += await _exchange(address, b"".join(frames[start:start + 100]), 100)
        assert answered == len(frames)
        return f"{answered} answered (all exceptions)"

    async def fuzzed_frames() -> str:
        frames = _fuzz(rng, 2000)
        answered = 0
        for start in range(0, len(frames), 50):
            answered += await _exchange(address, b"".join(frames[start:start + 50]), 50, silence_s=0.3)
        return f"{answered} answered"

    async def junk_bytes() -> str:
        for _ in range(200):
            await _exchange(address, rng.randbytes(rng.randrange(1, 600)), 0)
        return "served on"

    async def idle_bms() -> str:
        held = [await asyncio.open_connection(*address) for _ in range(300)]
        for _, writer in held:
            writer.close()
        return "capped at 16"

    async def oversized_bodies() -> str:
        statuses = []
        for k in range(8):
            body = b"x" * (30 * 1024 * 1024 if k % 2 == 0 else 70 * 1024)
            with contextlib.suppress(httpx.TransportError):
                response = await web.client.put("/api/network-limit", content=body,
                                                headers={"content-type": "application/json"})
                statuses.append(response.status_code)
        assert set(statuses) <= {413}
        return f"{len(statuses)}/8 answered 413 (the rest cut off)"

    async def guesses() -> str:
        async def guess(k: int) -> int:
            # verify=False: no CA bundle to load per client (plain HTTP anyway), which would block this shared loop.
            transport = httpx.AsyncHTTPTransport(local_address=f"127.0.3.{k}", verify=False)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}",
                                         timeout=30) as client:
                try:
                    return (await client.post("/api/session", json={"password": f"guess number {k}"})).status_code
                except httpx.TransportError:
                    return 0  # closed at the connection cap: every connection was busy
        codes = await asyncio.gather(*(guess(k) for k in range(1, 101)))
        return (f"{codes.count(401)} checked, {codes.count(429)} refused unchecked, {codes.count(0)} closed at the "
                "connection cap")

    async def idle_web() -> str:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
        for _, writer in held:
            writer.close()
        return "capped at 32"

    try:
        await attack("BMS pipelined refused writes (FC6/16/22/23, 100 per segment)", 2000, pipelined_refused_writes)
        await attack("BMS fuzzed PDUs (50 per segment)", 2000, fuzzed_frames)
        await attack("BMS junk bytes", 200, junk_bytes)
        await attack("BMS idle connections", 300, idle_bms)
        await attack("web oversized bodies (30 MB / 70 KB)", 8, oversized_bodies)
        await attack("web password guesses from 100 addresses", 100, guesses)
        await attack("web idle connections", 300, idle_web)
    finally:
        await gaps.close()
    with capsys.disabled():
        print("\n| attack | count | result | longest control-step gap |")
        print("|---|---|---|---|")
        for row in rows:
            print(f"| {row.attack} | {row.count} | {row.result} | {row.longest_gap_s * 1000:.0f} ms |")
