"""The BMS face under the wire-level findings of issue 12, over real loopback TCP with raw frames.

* pipelined requests (several MBAP frames in one write) each get their answer, in order, with their own
  transaction id;
* FC23 whose read half is refused changes nothing (before: the write was applied, then exception 2 answered);
* FC22 (mask write), FC17 (report server id) and FC43 (device identification) are answered exception 1 and change
  or reveal nothing;
* at the cap, a new client gets in and the quietest is disconnected (never a polling BMS); idle clients are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator

import pytest
from support.bms import BASE_STATUS, FakeGateway, bms_config

from gateway.faces.bms.register_map import MAP_VERSION
from gateway.faces.bms.server import BmsServer

UNIT = 1


def mbap(tid: int, pdu: bytes, unit: int = UNIT) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def read_holding(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 3, address, count)


def read_input(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 4, address, count)


def write_single(address: int, value: int) -> bytes:
    return struct.pack(">BHH", 6, address, value)


def read_write(read_address: int, read_count: int, write_address: int, values: list[int]) -> bytes:
    return struct.pack(f">BHHHHB{len(values)}H", 23, read_address, read_count, write_address, len(values),
                       2 * len(values), *values)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(transaction id, unit, pdu) of one answer."""
    async with asyncio.timeout(5):
        header = await reader.readexactly(7)
        tid, _, length, unit = struct.unpack(">HHHB", header)
        return tid, unit, await reader.readexactly(length - 1)


@contextlib.asynccontextmanager
async def serving(gateway: FakeGateway, **kwargs: float | int | None) -> AsyncIterator[BmsServer]:
    server = BmsServer(gateway, bms_config(), **kwargs)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def raw_client(server: BmsServer) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    assert server.tcp_address is not None
    reader, writer = await asyncio.open_connection(*server.tcp_address)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize("pipelined", [2, 3, 5])
async def test_pipelined_requests_in_one_segment_each_get_their_answer_in_order(pipelined: int) -> None:
    gateway = FakeGateway()
    requests = [read_input(0, 2), read_holding(0, 5), write_single(4, 77), read_holding(4, 1), read_input(15, 1)]
    async with serving(gateway) as server, raw_client(server) as (reader, writer):
        writer.write(b"".join(mbap(100 + k, pdu) for k, pdu in enumerate(requests[:pipelined])))
        await writer.drain()
        answers = [await read_frame(reader) for _ in range(pipelined)]
    expected = [
        (100, UNIT, bytes([4, 4]) + struct.pack(">HH", MAP_VERSION, 2)),
        (101, UNIT, bytes([3, 10]) + struct.pack(">5H", 250, 1, 0, 60, 0)),
        (102, UNIT, write_single(4, 77)),
        (103, UNIT, bytes([3, 2]) + struct.pack(">H", 77)),
        (104, UNIT, bytes([4, 2]) + struct.pack(">H", 400)),
    ]
    assert answers == expected[:pipelined]


async def test_a_long_pipeline_is_answered_completely_and_in_order() -> None:
    count = 200
    async with serving(FakeGateway()) as server, raw_client(server) as (reader, writer):
        writer.write(b"".join(mbap(k, read_input(k % 16, 1)) for k in range(count)))
        await writer.drain()
        answers = [await read_frame(reader) for _ in range(count)]
    assert [tid for tid, _, _ in answers] == list(range(count))
    assert all(pdu[0] == 4 for _, _, pdu in answers)


async def test_a_request_split_across_segments_is_still_answered() -> None:
    frame = mbap(7, read_holding(0, 2)) + mbap(8, read_holding(1, 1))
    async with serving(FakeGateway()) as server, raw_client(server) as (reader, writer):
        for part in (frame[:5], frame[5:15], frame[15:]):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)
        answers = [await read_frame(reader) for _ in range(2)]
    assert [tid for tid, _, _ in answers] == [7, 8]


async def test_fc23_with_a_refused_read_changes_nothing() -> None:
    gateway = FakeGateway()
    async with serving(gateway) as server, raw_client(server) as (reader, writer):
        # Write a valid network limit (HR0 = 100, i.e. 10 A) but read HR10..HR11, which do not exist.
        writer.write(mbap(1, read_write(10, 2, 0, [100])))
        await writer.drain()
        tid, _, pdu = await read_frame(reader)
    assert (tid, pdu) == (1, bytes([0x80 | 23, 2]))
    assert gateway.applied == []
    assert gateway.snapshot.network_limit_a == BASE_STATUS.network_limit_a


async def test_fc23_with_a_refused_write_does_not_read_and_changes_nothing() -> None:
    gateway = FakeGateway()
    async with serving(gateway) as server, raw_client(server) as (reader, writer):
        writer.write(mbap(1, read_write(0, 2, 0, [250, 7])))  # HR1 = 7 is out of range
        await writer.drain()
        _, _, pdu = await read_frame(reader)
    assert pdu == bytes([0x80 | 23, 3]) and gateway.applied == []


async def test_fc23_that_succeeds_still_writes_then_reads() -> None:
    gateway = FakeGateway()
    async with serving(gateway) as server, raw_client(server) as (reader, writer):
        writer.write(mbap(1, read_write(0, 1, 0, [180])))
        await writer.drain()
        _, _, pdu = await read_frame(reader)
    assert pdu == bytes([23, 2]) + struct.pack(">H", 180)
    assert gateway.snapshot.network_limit_a == 18.0


@pytest.mark.parametrize(("name", "pdu"), [
    ("FC22 mask write", struct.pack(">BHHH", 22, 0, 0x0000, 0x0064)),
    ("FC17 report server id", bytes([17])),
    ("FC43/14 device identification", bytes([43, 14, 1, 0])),
    ("FC8 diagnostics", struct.pack(">BHH", 8, 0, 0x1234)),
    ("FC1 read coils", struct.pack(">BHH", 1, 0, 1)),
])
async def test_functions_outside_the_map_are_exception_1_and_change_or_reveal_nothing(name: str,
                                                                                      pdu: bytes) -> None:
    gateway = FakeGateway()
    async with serving(gateway) as server, raw_client(server) as (reader, writer):
        writer.write(mbap(9, pdu))
        await writer.drain()
        tid, _, answer = await read_frame(reader)
    assert (tid, answer) == (9, bytes([0x80 | pdu[0], 1])), name
    assert gateway.applied == []
    assert b"pymodbus" not in answer.lower()


async def test_at_the_cap_a_new_client_gets_in_and_the_quietest_is_disconnected(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.faces.bms")
    cap = 4
    async with serving(FakeGateway(), max_connections=cap) as server, raw_client(server) as (bms_r, bms_w):
        assert server.tcp_address is not None
        flood = []
        for k in range(40):  # idle connections; the polling BMS is never the quietest
            flood.append(await asyncio.open_connection(*server.tcp_address))
            bms_w.write(mbap(k, read_input(0, 1)))
            await bms_w.drain()
            assert (await read_frame(bms_r))[:2] == (k, UNIT)
        closed = 0
        for reader, _ in flood[:-(cap - 1)]:
            async with asyncio.timeout(5):
                closed += await reader.read() == b""
        assert closed == len(flood) - (cap - 1)
        async with raw_client(server) as (new_reader, new_writer):  # and one more still gets in
            new_writer.write(mbap(99, read_input(0, 1)))
            await new_writer.drain()
            assert (await read_frame(new_reader))[0] == 99
        for _, writer in flood:
            writer.close()
    evictions = [r for r in caplog.records if "the most allowed" in r.getMessage()]
    assert len(evictions) == 1  # dozens of evictions, one log line


async def test_an_idle_client_is_disconnected_and_an_active_one_is_not() -> None:
    async with serving(FakeGateway(), idle_timeout_s=1.0) as server:
        assert server.tcp_address is not None
        idle_reader, idle_writer = await asyncio.open_connection(*server.tcp_address)
        async with raw_client(server) as (reader, writer):
            for k in range(40):
                writer.write(mbap(k, read_input(0, 1)))
                await writer.drain()
                await read_frame(reader)
                await asyncio.sleep(0.05)
            async with asyncio.timeout(5):
                assert await idle_reader.read() == b""
        idle_writer.close()
