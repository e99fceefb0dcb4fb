"""The BMS face over real loopback TCP, driven by a real pymodbus client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from pymodbus.client import AsyncModbusTcpClient
from support.bms import BASE_STATUS, FakeGateway, bms_config, running_server

from gateway.faces.bms.register_map import MAP_VERSION
from gateway.faces.bms.server import BmsServer, BmsStartError
from gateway.runtime.commands import (
    BmsHeartbeat,
    Command,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetEnabled,
    SetNetworkLimit,
)
from gateway.runtime.read_model import SiteStatus

UNIT = 1

# BASE_STATUS as the register map says it must read (worked out by hand from tests/bms_support.py).
SITE_INPUTS = [MAP_VERSION, 2, 1, 1, 245, 101, 202, 303, 120, 130, 140, 1, 57_920, 4, 1, 400, 1, 4_464, 25]
CHARGER_0 = [3, 1, 160, 159, 158, 157, 0, 11_000, 1, 4_464, 95, 0, 320, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0]
CHARGER_1 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 65_534, 160, 1, 76, 19_264, 0, 0, 0, 0]
SETTINGS = [250, 1, 0, 60, 0]
CHARGER_LIMITS = [200, 160]


@contextlib.asynccontextmanager
async def client_of(server: BmsServer, source: str | None = None) -> AsyncIterator[AsyncModbusTcpClient]:
    assert server.tcp_address is not None
    host, port = server.tcp_address
    client = AsyncModbusTcpClient(host, port=port, timeout=1, retries=0, reconnect_delay=0,
                                  source_address=(source, 0) if source else None)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


def origin_of(client: AsyncModbusTcpClient) -> str:
    host, port = client.ctx.transport.get_extra_info("sockname")[:2]
    return f"bms {host}:{port}"


def settings_of(s: SiteStatus) -> tuple[object, ...]:
    return (s.network_limit_a, s.enabled, s.bms_watchdog_s, s.bms_fallback_limit_a, tuple(u.limit_a for u in s.units))


async def test_every_register_reads_as_the_map_says() -> None:
    async with running_server(FakeGateway(), bms_config()) as server, client_of(server) as client:
        rr = await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=UNIT)
        assert rr.registers == SITE_INPUTS
        rr = await client.read_input_registers(1000, count=40, device_id=UNIT)
        assert rr.registers == CHARGER_0 + CHARGER_1
        rr = await client.read_holding_registers(0, count=5, device_id=UNIT)
        assert rr.registers == SETTINGS
        rr = await client.read_holding_registers(100, count=2, device_id=UNIT)
        assert rr.registers == CHARGER_LIMITS
        # One register at a time gives the same answers (each read is cut from the same definitions).
        for address, expected in enumerate(SITE_INPUTS):
            assert (await client.read_input_registers(address, device_id=UNIT)).registers == [expected]


async def test_reads_follow_the_latest_snapshot() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        gateway.snapshot = replace(BASE_STATUS, effective_limit_a=(0.0, 0.0, 0.0), units=BASE_STATUS.units[:1])
        assert (await client.read_input_registers(0, count=5, device_id=UNIT)).registers == [MAP_VERSION, 1, 1, 1, 0]
        rr = await client.read_input_registers(1020, count=1, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 2


@pytest.mark.parametrize(("address", "count"), [(19, 1), (18, 2), (999, 1), (1040, 1), (1039, 2), (20_999, 1)])
async def test_reading_an_undefined_input_register_is_exception_2(address: int, count: int) -> None:
    async with running_server(FakeGateway(), bms_config()) as server, client_of(server) as client:
        rr = await client.read_input_registers(address, count=count, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 2


@pytest.mark.parametrize(("address", "count"), [(5, 1), (4, 2), (99, 1), (102, 1), (1100, 1), (1999, 1),
                                                 (2005, 2), (2006, 1), (60_000, 5)])
async def test_reading_an_undefined_holding_register_is_exception_2(address: int, count: int) -> None:
    async with running_server(FakeGateway(), bms_config()) as server, client_of(server) as client:
        rr = await client.read_holding_registers(address, count=count, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 2


async def test_fc6_applies_with_the_clients_address_and_echoes_the_value() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        rr = await client.write_register(0, 180, device_id=UNIT)
        assert not rr.isError() and rr.registers == [180]
        origin = origin_of(client)
        assert gateway.applied == [(SetNetworkLimit(18.0), origin), (BmsHeartbeat(), origin)]
        assert gateway.status().network_limit_a == 18.0
        assert (await client.read_holding_registers(0, device_id=UNIT)).registers == [180]


async def test_fc6_echo_and_read_back_are_the_written_value_before_the_gateway_publishes() -> None:
    gateway = FakeGateway(publish_on_apply=False)
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        for address, value in [(0, 180), (3, 80), (4, 7), (101, 120)]:
            rr = await client.write_register(address, value, device_id=UNIT)
            assert not rr.isError() and rr.registers == [value], address
            assert (await client.read_holding_registers(address, device_id=UNIT)).registers == [value]
        assert gateway.status() is BASE_STATUS  # nothing published yet: the reads came from what was written


async def test_fc6_echo_is_the_request_even_when_the_gateway_stores_something_else() -> None:
    class WholeAmps(FakeGateway):
        """A gateway that keeps the network limit in whole amperes."""

        def apply(self, command: Command, origin: str) -> None:
            if isinstance(command, SetNetworkLimit):
                command = SetNetworkLimit(float(round(command.limit_a)))
            super().apply(command, origin)

    gateway = WholeAmps()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        rr = await client.write_register(0, 186, device_id=UNIT)
        assert not rr.isError() and rr.registers == [186]
        assert (await client.read_holding_registers(0, device_id=UNIT)).registers == [190]


async def test_fc16_block_write_and_heartbeat() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        rr = await client.write_registers(0, [300, 0, 60, 100, 9], device_id=UNIT)
        assert not rr.isError()
        assert gateway.commands == [SetNetworkLimit(30.0), SetEnabled(False), SetBmsWatchdog(60.0),
                                    SetBmsFallbackLimit(10.0), BmsHeartbeat()]
        assert (await client.read_holding_registers(0, count=5, device_id=UNIT)).registers == [300, 0, 60, 100, 9]
        gateway.applied.clear()
        assert not (await client.write_register(4, 10, device_id=UNIT)).isError()
        assert gateway.commands == [BmsHeartbeat()]


async def test_fc23_read_write_applies_then_reads() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        rr = await client.readwrite_registers(read_address=0, read_count=5, write_address=0, values=[150],
                                              device_id=UNIT)
        assert not rr.isError() and rr.registers == [150, 1, 0, 60, 0]
        assert gateway.commands == [SetNetworkLimit(15.0), BmsHeartbeat()]


INVALID_WRITES = [
    (0, [401], 3, "limit above installation"),
    (3, [401], 3, "fallback above installation"),
    (1, [2], 3, "enabled not 0/1"),
    (100, [321], 3, "charger above nameplate"),
    (101, [150], 3, "charger above its breaker (supervisor rule)"),
    (5, [1], 2, "reserved HR5"),
    (99, [1], 2, "reserved HR99"),
    (102, [1], 2, "charger that does not exist"),
    (1000, [1], 2, "input register address"),
    (0, [180, 1, 60, 100, 1, 5], 2, "block running into HR5"),
    (0, [180, 1, 60, 401], 3, "block with its last value out of range"),
    (0, [180, 2], 3, "block with its second value out of range"),
    (100, [100, 150], 3, "block the supervisor refuses half of"),
]


@pytest.mark.parametrize(("function", "address", "values", "code"), [
    pytest.param(function, address, values, code, id=f"{function} {name}")
    for address, values, code, name in INVALID_WRITES
    for function in (["fc6", "fc16"] if len(values) == 1 else ["fc16"])
])
async def test_invalid_writes_are_refused_and_change_nothing(function: str, address: int, values: list[int],
                                                             code: int) -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        before = settings_of(gateway.status())
        holding_before = (await client.read_holding_registers(0, count=5, device_id=UNIT)).registers
        if function == "fc6":
            rr = await client.write_register(address, values[0], device_id=UNIT)
        else:
            rr = await client.write_registers(address, values, device_id=UNIT)
        assert rr.isError() and rr.exception_code == code
        assert settings_of(gateway.status()) == before
        assert (await client.read_holding_registers(0, count=5, device_id=UNIT)).registers == holding_before
        assert (await client.read_holding_registers(100, count=2, device_id=UNIT)).registers == CHARGER_LIMITS
        assert not any(isinstance(c, BmsHeartbeat) for c in gateway.commands)


async def test_writes_only_from_allowed_addresses_reads_from_anyone() -> None:
    gateway = FakeGateway()
    config = bms_config(allow_write_from=["127.0.0.2", "10.0.0.0/8"])
    async with (running_server(gateway, config) as server, client_of(server) as stranger,
                client_of(server, source="127.0.0.2") as bms):
        rr = await stranger.write_register(0, 180, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 1
        rr = await stranger.write_registers(0, [180, 1], device_id=UNIT)
        assert rr.isError() and rr.exception_code == 1
        assert gateway.applied == []
        assert (await stranger.read_holding_registers(0, count=5, device_id=UNIT)).registers == SETTINGS
        assert not (await bms.write_register(0, 180, device_id=UNIT)).isError()
        assert gateway.applied[0] == (SetNetworkLimit(18.0), origin_of(bms))
        assert origin_of(bms).startswith("bms 127.0.0.2:")


async def test_a_network_in_the_allow_list_admits_its_hosts() -> None:
    gateway = FakeGateway()
    async with (running_server(gateway, bms_config(allow_write_from=["127.0.0.0/8"])) as server,
                client_of(server, source="127.0.0.3") as client):
        assert not (await client.write_register(1, 0, device_id=UNIT)).isError()
        assert gateway.commands == [SetEnabled(False)]


async def test_no_allow_list_means_no_tcp_writes() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config(allow_write_from=[])) as server, client_of(server) as client:
        rr = await client.write_register(4, 1, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 1
        assert gateway.applied == []


async def test_read_only_mode_refuses_every_write_and_serves_reads() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config(read_only=True)) as server, client_of(server) as client:
        for rr in (await client.write_register(0, 180, device_id=UNIT),
                   await client.write_registers(0, [180, 1], device_id=UNIT),
                   await client.write_register(4, 1, device_id=UNIT)):
            assert rr.isError() and rr.exception_code == 1
        assert gateway.applied == []
        assert (await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=UNIT)).registers == SITE_INPUTS


@pytest.mark.parametrize("unit", [0, 2, 7, 247, 255])
async def test_other_unit_ids_get_exception_10_and_change_nothing(unit: int) -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server, client_of(server) as client:
        for rr in (await client.read_holding_registers(0, count=5, device_id=unit),
                   await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=unit),
                   await client.write_register(0, 180, device_id=unit),
                   await client.write_registers(0, [180, 1], device_id=unit)):
            assert rr.isError() and rr.exception_code == 10
        assert gateway.applied == []
        assert not (await client.read_holding_registers(0, device_id=UNIT)).isError()


async def test_a_configured_unit_id_is_the_one_that_answers() -> None:
    async with running_server(FakeGateway(), bms_config(unit_id=17)) as server, client_of(server) as client:
        assert (await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=17)).registers == SITE_INPUTS
        rr = await client.read_input_registers(0, count=1, device_id=1)
        assert rr.isError() and rr.exception_code == 10


async def test_coils_and_discrete_inputs_do_not_exist() -> None:
    async with running_server(FakeGateway(), bms_config()) as server, client_of(server) as client:
        for rr in (await client.read_coils(0, count=1, device_id=UNIT),
                   await client.read_discrete_inputs(0, count=1, device_id=UNIT),
                   await client.write_coil(0, True, device_id=UNIT)):
            assert rr.isError() and rr.exception_code == 1


async def test_garbage_and_stalled_clients_do_not_disturb_another_client() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server:
        assert server.tcp_address is not None
        host, port = server.tcp_address
        stalled_reader, stalled = await asyncio.open_connection(host, port)
        stalled.write(struct.pack(">HHHB", 1, 0, 6, UNIT) + b"\x04\x00")  # half a request, then silence
        garbage_reader, garbage = await asyncio.open_connection(host, port)
        garbage.write(b"\xde\xad\xbe\xef" * 64)
        garbage.write(struct.pack(">HHHB", 2, 0, 0xFFFF, UNIT) + b"\x03" * 300)  # absurd MBAP length
        garbage.write(struct.pack(">HHHB", 3, 7, 6, UNIT) + b"\x04\x00\x00\x00\x10")  # bad protocol id
        await garbage.drain()
        try:
            async with client_of(server) as client:
                for _ in range(20):
                    rr = await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=UNIT)
                    assert rr.registers == SITE_INPUTS
                assert not (await client.write_register(0, 200, device_id=UNIT)).isError()
            async with client_of(server) as late:  # and new connections are still accepted
                assert (await late.read_holding_registers(0, device_id=UNIT)).registers == [200]
            assert gateway.commands == [SetNetworkLimit(20.0), BmsHeartbeat()]
        finally:
            for writer in (stalled, garbage):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
        del stalled_reader, garbage_reader


async def test_many_clients_at_once_each_get_their_own_answers() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server:
        async def session(k: int) -> None:
            async with client_of(server) as client:
                for _ in range(10):
                    site = await client.read_input_registers(0, count=len(SITE_INPUTS), device_id=UNIT)
                    block = await client.read_input_registers(1000 + 20 * (k % 2), count=20, device_id=UNIT)
                    assert site.registers == SITE_INPUTS
                    assert block.registers == (CHARGER_0 if k % 2 == 0 else CHARGER_1)

        await asyncio.gather(*(session(k) for k in range(25)))


async def test_accepted_and_refused_writes_are_logged_with_the_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.faces.bms")
    async with running_server(FakeGateway(), bms_config()) as server, client_of(server) as client:
        await client.write_register(0, 180, device_id=UNIT)
        await client.write_register(0, 999, device_id=UNIT)
        origin = origin_of(client)
    accepted = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and origin in r.getMessage()]
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and origin in r.getMessage()]
    assert accepted == [f"{origin} wrote HR0 network_limit=180"]
    assert len(refused) == 1 and "exception 3" in refused[0] and "999" in refused[0]


async def test_a_port_in_use_is_a_clear_start_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = BmsServer(FakeGateway(), bms_config(port=port))
        with pytest.raises(BmsStartError, match=f"127.0.0.1:{port}"):
            await server.start()
        assert server.tcp_address is None


async def test_a_disabled_face_serves_nothing() -> None:
    async with running_server(FakeGateway(), bms_config(enabled=False)) as server:
        assert server.tcp_address is None


async def test_stop_closes_the_port() -> None:
    server = BmsServer(FakeGateway(), bms_config())
    await server.start()
    assert server.tcp_address is not None
    host, port = server.tcp_address
    await server.stop()
    await server.stop()  # twice is harmless
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)
