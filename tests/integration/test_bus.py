"""The bus owner over real Modbus: loopback TCP and RTU on a pseudo-terminal line, with the simulator's faults."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
from support.memory_model import MemoryModel
from support.ptybridge import PtyBridge

from drivers.bus import BusPool, ModbusBus
from drivers.errors import ConnectionLost, DeviceBusy, DeviceRejected, DeviceTimeout, GatewayPathError
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import SimServer, TcpListen
from drivers.transport import BusOptions, SerialLine, TcpEndpoint

FAST = BusOptions(connect_timeout_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2, late_answer_guard_s=0.15)


@pytest.fixture
async def tcp() -> AsyncIterator[tuple[SimServer, ModbusBus, dict[int, MemoryModel]]]:
    models = {1: MemoryModel(1), 2: MemoryModel(2)}
    async with SimServer(models, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), FAST)
        yield server, bus, models
        await bus.close()


@pytest.fixture
async def rtu() -> AsyncIterator[tuple[SimServer, ModbusBus, dict[int, MemoryModel]]]:
    bridge = PtyBridge()
    models = {1: MemoryModel(1), 2: MemoryModel(2)}
    try:
        async with SimServer(models, SerialLine(bridge.a)) as server:
            bus = ModbusBus(SerialLine(bridge.b), FAST)
            yield server, bus, models
            await bus.close()
    finally:
        bridge.close()


async def test_units_share_one_tcp_bus_and_every_table_works(tcp: tuple[SimServer, ModbusBus, dict[int, MemoryModel]],
                                                             ) -> None:
    _, bus, models = tcp
    assert await bus.read_registers(1, "holding", 100, 3, 0.5) == [1, 2, 3]
    assert await bus.read_registers(2, "input", 0, 2, 0.5) == [200, 201]
    await bus.write_registers(1, 100, [42], function_code=6, timeout_s=0.5)
    await bus.write_registers(2, 101, [7, 8], function_code=16, timeout_s=0.5)
    assert models[1].holding[100] == 42
    assert [models[2].holding[a] for a in (101, 102)] == [7, 8]
    assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [42]
    await bus.write_coil(1, 3, True, 0.5)
    assert await bus.read_bits(1, "coil", 0, 5, 0.5) == [False, False, False, True, False]


@pytest.mark.parametrize(("code", "error"), [(1, DeviceRejected), (2, DeviceRejected), (3, DeviceRejected),
                                             (4, DeviceRejected), (5, DeviceBusy), (6, DeviceBusy),
                                             (10, GatewayPathError), (11, GatewayPathError)])
async def test_each_exception_code_becomes_its_driver_error(
        tcp: tuple[SimServer, ModbusBus, dict[int, MemoryModel]], code: int, error: type[Exception]) -> None:
    server, bus, _ = tcp
    server.set_fault(1, Fault(FaultKind.EXCEPTION, exception_code=code))
    with pytest.raises(error) as raised:
        await bus.read_registers(1, "holding", 100, 2, 0.5)
    if isinstance(raised.value, DeviceRejected):
        assert raised.value.exception_code == code
    assert await bus.read_registers(2, "holding", 100, 1, 0.5) == [2]  # the other unit is untouched


async def test_refused_write_changes_nothing_and_unknown_unit_is_a_gateway_path_error(
        tcp: tuple[SimServer, ModbusBus, dict[int, MemoryModel]]) -> None:
    _, bus, models = tcp
    with pytest.raises(DeviceRejected) as raised:
        await bus.write_registers(1, 100, [MemoryModel.REFUSED, 5], function_code=16, timeout_s=0.5)
    assert raised.value.exception_code == 3 and models[1].holding[100] == 1 and models[1].holding[101] == 2
    with pytest.raises(DeviceRejected) as raised:
        await bus.read_registers(1, "holding", 0, 2, 0.5)  # an address the device does not have
    assert raised.value.exception_code == 2
    with pytest.raises(GatewayPathError):
        await bus.read_registers(9, "holding", 100, 1, 0.5)


async def test_a_silent_unit_holds_the_line_only_for_its_own_timeout(
        tcp: tuple[SimServer, ModbusBus, dict[int, MemoryModel]]) -> None:
    server, bus, _ = tcp
    server.set_fault(2, Fault(FaultKind.SILENT))
    started = time.monotonic()

    async def live() -> float:
        await asyncio.sleep(0.01)  # queue behind the dead unit's request
        assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [1]
        return time.monotonic() - started

    async def dead() -> None:
        with pytest.raises(DeviceTimeout):
            await bus.read_registers(2, "holding", 100, 1, 0.3)

    async with asyncio.timeout(5):
        _, live_done_s = await asyncio.gather(dead(), live())
    assert 0.3 <= live_done_s < 0.3 + 0.4
    assert bus.stats(2).consecutive_failures == 1 and bus.stats(1).successes == 1


async def test_a_dropped_connection_is_reported_at_once_and_reopened_on_the_next_request(
        tcp: tuple[SimServer, ModbusBus, dict[int, MemoryModel]]) -> None:
    server, bus, _ = tcp
    assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [1]
    server.set_fault(2, Fault(FaultKind.DROP))
    with pytest.raises(ConnectionLost):  # the close itself ends the request, long before its 60 s timeout
        async with asyncio.timeout(10):
            await bus.read_registers(2, "holding", 100, 1, 60.0)
    assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [1]


async def test_no_server_means_connection_lost_with_backoff_then_recovery() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = ModbusBus(TcpEndpoint("127.0.0.1", port), FAST)
    try:
        with pytest.raises(ConnectionLost, match="cannot connect"):
            await bus.read_registers(1, "holding", 100, 1, 0.5)
        with pytest.raises(ConnectionLost, match="next attempt"):
            await bus.read_registers(1, "holding", 100, 1, 0.5)  # inside the backoff: no connect attempt
        async with SimServer({1: MemoryModel(5)}, TcpListen(port=port)):
            await asyncio.sleep(FAST.backoff_max_s)
            assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [5]
    finally:
        await bus.close()
    with pytest.raises(ConnectionLost, match="closed"):
        await bus.read_registers(1, "holding", 100, 1, 0.5)


async def test_link_statistics_use_the_injected_clock() -> None:
    ticks = iter(range(100))
    async with SimServer({1: MemoryModel()}, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), FAST, clock=lambda: float(next(ticks)))
        await bus.read_registers(1, "input", 0, 1, 0.5)
        server.set_fault(1, Fault(FaultKind.EXCEPTION, exception_code=6))
        with pytest.raises(DeviceBusy):
            await bus.read_registers(1, "input", 0, 1, 0.5)
        await bus.close()
    stats = bus.stats(1)
    assert (stats.successes, stats.failures, stats.consecutive_failures) == (1, 1, 1)
    assert stats.last_latency_s == 1.0 and stats.last_success_at == 2.0 and stats.success_ratio == 0.5
    assert "exception 6" in (stats.last_error or "")


async def test_rtu_line_serves_the_live_unit_while_the_other_is_silent(
        rtu: tuple[SimServer, ModbusBus, dict[int, MemoryModel]]) -> None:
    server, bus, _ = rtu
    server.set_fault(2, Fault(FaultKind.SILENT))
    for _ in range(3):
        with pytest.raises(DeviceTimeout):
            await bus.read_registers(2, "input", 0, 2, 0.2)
        assert await bus.read_registers(1, "input", 0, 2, 0.5) == [100, 101]
    with pytest.raises(DeviceTimeout):
        await bus.read_registers(7, "input", 0, 2, 0.2)  # nobody on the line has unit 7
    server.set_fault(2, Fault(FaultKind.DROP))  # RTU has no connection to drop: the unit falls silent
    with pytest.raises(DeviceTimeout):
        await bus.read_registers(2, "input", 0, 2, 0.2)
    assert bus.connected


async def test_rtu_late_answer_is_never_taken_for_the_next_request() -> None:
    """The unit answers 0.3 s after each request, the timeout is 0.15 s, the guard 0.35 s. Its value changes
    between requests, so an answer taken for the wrong request would show the old value. Only timeouts may come
    back, then, once the unit is healthy again, the new value. (Margins of 0.15-0.2 s keep this deterministic.)"""
    bridge = PtyBridge()
    models = {1: MemoryModel(1), 2: MemoryModel(2)}
    try:
        async with SimServer(models, SerialLine(bridge.a)) as server:
            bus = ModbusBus(SerialLine(bridge.b), BusOptions(late_answer_guard_s=0.35))
            server.set_fault(2, Fault(FaultKind.LATE, late_s=0.3))
            for value in range(500, 503):
                models[2].holding[100] = value
                with pytest.raises(DeviceTimeout):
                    await bus.read_registers(2, "holding", 100, 1, 0.15)
                assert await bus.read_registers(1, "holding", 100, 1, 0.5) == [1]
            server.set_fault(2, Fault())
            models[2].holding[100] = 999
            assert await bus.read_registers(2, "holding", 100, 1, 0.5) == [999]
            await bus.close()
    finally:
        bridge.close()


async def test_without_the_guard_a_late_answer_would_be_misassigned() -> None:
    """Control for the test above: with no guard time, pymodbus hands the late answer to the next request for the
    same unit (pitfall 5). This is why the bus waits; if pymodbus ever fixes it, this test says so."""
    bridge = PtyBridge()
    model = MemoryModel()
    try:
        async with SimServer({2: model}, SerialLine(bridge.a)) as server:
            bus = ModbusBus(SerialLine(bridge.b), BusOptions(late_answer_guard_s=0.0))
            server.set_fault(2, Fault(FaultKind.LATE, late_s=0.3))
            model.holding[100] = 111
            with pytest.raises(DeviceTimeout):
                await bus.read_registers(2, "holding", 100, 1, 0.15)
            model.holding[100] = 222
            assert await bus.read_registers(2, "holding", 100, 1, 0.3) == [111]
            await bus.close()
    finally:
        bridge.close()


async def test_a_late_answer_of_another_shape_is_detected_even_without_the_guard() -> None:
    bridge = PtyBridge()
    try:
        async with SimServer({2: MemoryModel()}, SerialLine(bridge.a)) as server:
            bus = ModbusBus(SerialLine(bridge.b), BusOptions(late_answer_guard_s=0.0))
            server.set_fault(2, Fault(FaultKind.LATE, late_s=0.3))
            with pytest.raises(DeviceTimeout):
                await bus.read_registers(2, "holding", 100, 4, 0.15)
            with pytest.raises(DeviceTimeout, match=r"function code|does not match"):
                await bus.read_registers(2, "input", 0, 2, 0.3)  # gets the FC3 answer above: refused
            await bus.close()
    finally:
        bridge.close()


async def test_rtu_frames_keep_the_inter_frame_gap() -> None:
    bridge = PtyBridge()
    try:
        async with SimServer({1: MemoryModel()}, SerialLine(bridge.a)):
            bus = ModbusBus(SerialLine(bridge.b), BusOptions(min_frame_gap_s=0.05))
            bus.require_gap(1, 0.08)
            await bus.read_registers(1, "input", 0, 1, 0.5)
            started = time.monotonic()
            for _ in range(3):
                await bus.read_registers(1, "input", 0, 1, 0.5)
            assert time.monotonic() - started >= 3 * 0.08
            await bus.close()
    finally:
        bridge.close()


def test_serial_gap_follows_the_modbus_line_spec() -> None:
    assert SerialLine("/dev/x", 19200, "E").frame_gap_s == pytest.approx(3.5 * 11 / 19200)
    assert SerialLine("/dev/x", 9600, "N").frame_gap_s == pytest.approx(3.5 * 10 / 9600)
    assert SerialLine("/dev/x", 115200).frame_gap_s == pytest.approx(0.00175)


async def test_pool_shares_a_bus_per_line_and_rejects_one_line_with_two_settings() -> None:
    pool = BusPool(FAST)
    a = pool.bus_for(TcpEndpoint("10.0.0.9", 502))
    assert pool.bus_for(TcpEndpoint("10.0.0.9", 502)) is a
    assert pool.bus_for(TcpEndpoint("10.0.0.9", 503)) is not a
    assert pool.bus_for(SerialLine("/dev/ttyX", 19200)) is pool.bus_for(SerialLine("/dev/ttyX", 19200))
    with pytest.raises(ValueError, match="twice"):
        pool.bus_for(SerialLine("/dev/ttyX", 9600))
    with pytest.raises(ValueError, match="twice"):
        pool.bus_for(TcpEndpoint("10.0.0.9", 502, rtu_framing=True))
    await pool.close()
    assert pool.buses == ()


@pytest.mark.parametrize("call", [
    lambda bus: bus.read_registers(0, "holding", 0, 1, 1.0),
    lambda bus: bus.read_registers(1, "holding", 0, 126, 1.0),
    lambda bus: bus.read_registers(1, "holding", 65535, 2, 1.0),
    lambda bus: bus.read_registers(1, "holding", 0, 1, 0.0),
    lambda bus: bus.write_registers(1, 0, [1, 2], function_code=6, timeout_s=1.0),
    lambda bus: bus.write_registers(1, 0, [70000], function_code=16, timeout_s=1.0),
])
async def test_invalid_arguments_are_programming_errors(call: object) -> None:
    bus = ModbusBus(TcpEndpoint("127.0.0.1", 1), FAST)
    with pytest.raises(ValueError):
        await call(bus)  # type: ignore[operator]
    await bus.close()


async def test_a_tcp_socket_where_every_unit_times_out_is_reopened() -> None:
    async with SimServer({1: MemoryModel(), 2: MemoryModel()}, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), BusOptions(timeouts_before_reconnect=3))
        assert await bus.read_registers(1, "input", 0, 1, 0.5) == [0]
        server.set_fault(1, Fault(FaultKind.SILENT))
        for _ in range(2):  # a dead unit among live ones never costs the others their socket
            with pytest.raises(DeviceTimeout):
                await bus.read_registers(1, "input", 0, 1, 0.1)
            await bus.read_registers(2, "input", 0, 1, 0.5)
        assert bus.connections == 1
        server.set_fault(2, Fault(FaultKind.SILENT))
        for unit in (1, 2, 1):
            with pytest.raises(DeviceTimeout):
                await bus.read_registers(unit, "input", 0, 1, 0.1)
        assert not bus.connected  # presumed half-open: closed, and reopened by the next request
        server.set_fault(1, Fault())
        assert await bus.read_registers(1, "input", 0, 1, 0.5) == [0]
        assert bus.connections == 2
        await bus.close()
