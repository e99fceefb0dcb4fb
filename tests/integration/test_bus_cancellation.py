"""A cancelled poll stops: the bus never lets pymodbus's connect lose a cancellation (the gateway's shutdown
cancels its pollers and waits for them; one that carried on would keep it from ever exiting)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from support.memory_model import MemoryModel

from drivers.bus import ModbusBus
from drivers.errors import ConnectionLost
from drivers.sim.server import SimServer, TcpListen
from drivers.transport import BusOptions, TcpEndpoint

FAST = BusOptions(connect_timeout_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2)


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_read_cancelled_while_the_connection_is_refused_ends_cancelled() -> None:
    port = refused_port()
    outcomes = []
    for attempt in range(40):  # the cancellation lands at a different point of the connect attempt each time
        bus = ModbusBus(TcpEndpoint("127.0.0.1", port), FAST)
        task = asyncio.create_task(bus.read_registers(1, "input", 0, 1, timeout_s=0.5))
        for _ in range(attempt % 8):
            await asyncio.sleep(0)
        if not task.cancel():
            with contextlib.suppress(ConnectionLost):
                await task
            continue
        done, _ = await asyncio.wait([task], timeout=1)
        assert done, "the cancelled read is still running"
        outcomes.append("cancelled" if task.cancelled() else repr(task.exception()))
        await bus.close()
    assert outcomes and set(outcomes) == {"cancelled"}, outcomes


async def test_a_read_cancelled_while_its_answer_arrives_ends_cancelled() -> None:
    async with SimServer({1: MemoryModel(1)}, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), FAST)
        await bus.read_registers(1, "input", 0, 1, timeout_s=1)
        outcomes = []
        for attempt in range(60):
            task = asyncio.create_task(bus.read_registers(1, "input", 0, 1, timeout_s=1))
            for _ in range(attempt % 12):
                await asyncio.sleep(0)
            if not task.cancel():
                await task
                continue
            done, _ = await asyncio.wait([task], timeout=1)
            assert done, "the cancelled read is still running"
            outcomes.append("cancelled" if task.cancelled() else repr(task.exception() or task.result()))
        await bus.close()
    assert outcomes and set(outcomes) == {"cancelled"}, outcomes
