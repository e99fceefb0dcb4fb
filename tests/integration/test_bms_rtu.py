"""The BMS face as an RTU slave, over a pseudo-terminal pair with a real pymodbus serial master."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from support.bms import FakeGateway, bms_config, pty_line, running_server
from support.ptybridge import PtyBridge

from gateway.faces.bms.register_map import MAP_VERSION
from gateway.faces.bms.server import RTU_TASK, BmsServer, BmsStartError
from gateway.runtime.commands import BmsHeartbeat, SetNetworkLimit
from gateway.runtime.tasks import TaskSupervisor

SITE_INPUTS_HEAD = [MAP_VERSION, 2, 1, 1, 245]


@contextlib.asynccontextmanager
async def rtu_setup(gateway: FakeGateway, unit_id: int = 5, read_only: bool = False,
                    ) -> AsyncIterator[tuple[AsyncModbusSerialClient, str]]:
    with pty_line() as (slave_end, master_end):
        config = bms_config(unit_id=unit_id, read_only=read_only, allow_write_from=[],
                            rtu={"device": slave_end, "baudrate": 19200, "parity": "N"})
        async with running_server(gateway, config):
            client = AsyncModbusSerialClient(master_end, baudrate=19200, parity="N", timeout=0.3, retries=0,
                                             reconnect_delay=0)
            assert await client.connect()
            try:
                yield client, slave_end
            finally:
                client.close()


async def test_rtu_slave_reads_and_writes_with_its_own_origin() -> None:
    gateway = FakeGateway()
    async with rtu_setup(gateway) as (client, device):
        assert (await client.read_input_registers(0, count=5, device_id=5)).registers == SITE_INPUTS_HEAD
        rr = await client.write_register(0, 190, device_id=5)
        assert not rr.isError() and rr.registers == [190]
        # The TCP allow-list is empty, but the serial line is the BMS's own wire.
        assert gateway.applied == [(SetNetworkLimit(19.0), f"bms rtu {device}"), (BmsHeartbeat(), f"bms rtu {device}")]
        rr = await client.write_registers(0, [401], device_id=5)
        assert rr.isError() and rr.exception_code == 3


@pytest.mark.parametrize("other", [1, 4, 6, 247])
async def test_rtu_slave_stays_silent_for_other_units(other: int) -> None:
    gateway = FakeGateway()
    async with rtu_setup(gateway) as (client, _):
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=5, device_id=other)
        with pytest.raises(ModbusIOException):
            await client.write_register(0, 190, device_id=other)
        assert gateway.applied == []
        assert (await client.read_input_registers(0, count=5, device_id=5)).registers == SITE_INPUTS_HEAD


async def test_rtu_broadcast_is_ignored() -> None:
    gateway = FakeGateway()
    async with rtu_setup(gateway) as (client, _):
        assert await client.write_register(0, 190, device_id=0, no_response_expected=True) is None
        # A master waits a turnaround delay after a broadcast (Modbus over serial line, 2.4.1); pymodbus's server
        # also handles only the first of two frames that arrive in one read.
        await asyncio.sleep(0.1)
        # The next exchange with our unit proves the line is clear and the broadcast was not applied.
        assert (await client.read_holding_registers(0, device_id=5)).registers == [250]
        assert gateway.applied == []


async def test_rtu_read_only() -> None:
    gateway = FakeGateway()
    async with rtu_setup(gateway, read_only=True) as (client, _):
        rr = await client.write_register(0, 190, device_id=5)
        assert rr.isError() and rr.exception_code == 1
        assert gateway.applied == []


async def test_a_missing_serial_port_is_a_clear_start_error_and_closes_tcp() -> None:
    server = BmsServer(FakeGateway(), bms_config(rtu={"device": "/dev/does-not-exist-bms"}))
    with pytest.raises(BmsStartError, match="/dev/does-not-exist-bms"):
        await server.start()
    assert server.tcp_address is None


class UsbAdapter:
    """A USB RS-485 adapter as the gateway sees it: a stable name (a symlink, as udev's /dev/serial/by-id gives)
    to a tty that vanishes when the adapter is unplugged and comes back as a new tty when it is plugged in."""

    def __init__(self, name: Path) -> None:
        self.name = name
        self.bridge: PtyBridge | None = None

    def plug(self) -> str:
        """Plug in; returns the other end of the cable, where the BMS (a pymodbus master) is."""
        self.bridge = PtyBridge()
        self.name.symlink_to(self.bridge.a)
        return self.bridge.b

    def unplug(self) -> None:
        assert self.bridge is not None
        self.name.unlink()
        self.bridge.close()
        self.bridge = None


async def read_head(master_end: str) -> list[int] | None:
    client = AsyncModbusSerialClient(master_end, baudrate=19200, parity="N", timeout=0.3, retries=0,
                                     reconnect_delay=0)
    try:
        if not await client.connect():
            return None
        return (await client.read_input_registers(0, count=5, device_id=5)).registers
    except ModbusIOException:
        return None
    finally:
        client.close()


async def test_an_unplugged_serial_adapter_shows_fault_and_the_line_answers_again_once_it_is_back(
        tmp_path: Path) -> None:
    # pymodbus never reads a serial port again once it went away: the BMS, seeing no answers, would run into its
    # watchdog and the site would stay at the fallback limit until someone restarted the gateway.
    adapter = UsbAdapter(tmp_path / "ttyUSB-bms")
    master_end = adapter.plug()
    tasks = TaskSupervisor(first_backoff_s=0.2, most_backoff_s=0.5)
    config = bms_config(unit_id=5, allow_write_from=[], rtu={"device": str(adapter.name), "baudrate": 19200,
                                                             "parity": "N"})
    server = BmsServer(FakeGateway(), config, tasks=tasks)
    await server.start()
    try:
        assert await read_head(master_end) == SITE_INPUTS_HEAD
        adapter.unplug()
        async with asyncio.timeout(5):
            while not tasks.is_down(RTU_TASK):  # noqa: ASYNC110 - the task supervisor has no event to wait on
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # a few attempts to open a port that is not there
        assert tasks.is_down(RTU_TASK)

        master_end = adapter.plug()
        async with asyncio.timeout(10):
            while await read_head(master_end) != SITE_INPUTS_HEAD:  # noqa: ASYNC110 - polling over the wire
                await asyncio.sleep(0.1)
    finally:
        await server.stop()
        if adapter.bridge is not None:
            adapter.unplug()
