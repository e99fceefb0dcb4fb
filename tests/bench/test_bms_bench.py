"""How much the BMS face adds to a Modbus round trip: measured against a bare pymodbus server in the same run.

Prints its figures (``python -m pytest tests/test_bms_bench.py -q``); asserts only that the answers are right.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from support.bms import BASE_STATUS, UNIT_A, FakeGateway, bms_config, running_server

ROUNDS = 400


async def median_us(call: Callable[[], Awaitable[ModbusPDU]]) -> float:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        rr = await call()
        samples.append(time.perf_counter() - start)
        assert not rr.isError()
    return statistics.median(samples) * 1e6


async def connect(port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    assert await client.connect()
    return client


async def test_round_trip_overhead_of_the_face(capsys: pytest.CaptureFixture[str]) -> None:
    bare = ModbusTcpServer([SimDevice(1, simdata=(
        [SimData(0, datatype=DataType.BITS)], [SimData(0, datatype=DataType.BITS)],
        [SimData(0, count=5, datatype=DataType.REGISTERS)],
        [SimData(0, count=120, values=7, datatype=DataType.REGISTERS)]))], address=("127.0.0.1", 0))
    await bare.serve_forever(background=True)
    figures: dict[str, float] = {}
    try:
        client = await connect(bare.transport.sockets[0].getsockname()[1])
        figures["bare pymodbus, FC4 IR0-15"] = await median_us(
            lambda: client.read_input_registers(0, count=16, device_id=1))
        figures["bare pymodbus, FC4 120 registers"] = await median_us(
            lambda: client.read_input_registers(0, count=120, device_id=1))
        figures["bare pymodbus, FC6 HR4"] = await median_us(lambda: client.write_register(4, 1, device_id=1))
        client.close()
    finally:
        await bare.shutdown()

    big_site = replace(BASE_STATUS, units=tuple(replace(UNIT_A, id=f"u{i}", index=i) for i in range(1000)))
    gateway = FakeGateway(snapshot=big_site)
    async with running_server(gateway, bms_config()) as server:
        assert server.tcp_address is not None
        client = await connect(server.tcp_address[1])
        figures["face, FC4 IR0-15"] = await median_us(lambda: client.read_input_registers(0, count=16, device_id=1))
        figures["face, FC4 IR1000-1119 (120 registers, 6 blocks)"] = await median_us(
            lambda: client.read_input_registers(1000, count=120, device_id=1))
        figures["face, FC6 HR4 heartbeat"] = await median_us(lambda: client.write_register(4, 1, device_id=1))

        async def after_publish() -> ModbusPDU:
            gateway.publish()  # a new snapshot: the face encodes its 1000-charger site registers again
            return await client.read_input_registers(0, count=16, device_id=1)

        figures["face, FC4 IR0-15, new snapshot each time"] = await median_us(after_publish)
        client.close()

    def baseline(name: str) -> float:
        kind = "FC6 HR4" if "FC6" in name else "FC4 120 registers" if "120" in name else "FC4 IR0-15"
        return figures[f"bare pymodbus, {kind}"]

    with capsys.disabled():
        print(f"\nBMS face round trips on loopback TCP, 1000-charger site, median of {ROUNDS}:")
        for name, us in figures.items():
            print(f"  {name:<46} {us:8.1f} µs   x{us / baseline(name):.2f} of bare pymodbus alike")
