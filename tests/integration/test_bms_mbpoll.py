"""mbpoll, an independent Modbus master, against the BMS face: a read, writes, and every command line in the docs.

Skipped when mbpoll is not installed (``apt-get install mbpoll``; .ci/run installs it).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import time
from dataclasses import replace

import pytest
from support.bms import BASE_STATUS, FakeGateway, bms_config, pty_line, running_server
from support.paths import REPO

from gateway.faces.bms.register_map import MAP_VERSION
from gateway.faces.bms.server import BmsServer
from gateway.runtime.commands import (
    BmsHeartbeat,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetNetworkLimit,
    SetSessionNeed,
)

pytestmark = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")

DOCS = REPO / "docs" / "bms.md"
DEMO_PORT = "5020"


async def mbpoll(server: BmsServer, options: str, *write_values: int) -> tuple[int, str, str]:
    assert server.tcp_address is not None
    host, port = server.tcp_address
    process = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-p", str(port), "-o", "2", *options.split(), host, *map(str, write_values),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def values(output: str) -> dict[int, int]:
    return {int(ref): int(value) for ref, value in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", output, re.M)}


async def test_mbpoll_reads_the_site_status_and_power() -> None:
    async with running_server(FakeGateway(), bms_config()) as server:
        code, out, err = await mbpoll(server, "-a 1 -0 -t 3 -r 0 -c 19 -1")
        assert code == 0, err
        assert values(out) == dict(enumerate([MAP_VERSION, 2, 1, 1, 245, 101, 202, 303, 120, 130, 140, 1, 57_920, 4, 1,
                                              400, 1, 4_464, 25]))
        code, out, err = await mbpoll(server, "-a 1 -0 -t 3:int -B -r 11 -1")
        assert code == 0, err
        assert values(out) == {11: 123_456}


async def test_mbpoll_writes_the_limit_and_a_refused_write_is_an_illegal_value() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server:
        code, out, err = await mbpoll(server, "-a 1 -0 -t 4 -r 0", 210)
        assert code == 0 and "Written 1 references" in out, err
        code, out, err = await mbpoll(server, "-a 1 -0 -t 4 -r 2", 60, 100)
        assert code == 0 and "Written 2 references" in out, err
        code, out, err = await mbpoll(server, "-a 1 -0 -t 4 -r 0", 999)
        assert code == 1 and "Illegal data value" in err
        code, out, err = await mbpoll(server, "-a 1 -0 -t 4 -r 0 -c 5 -1")
        assert code == 0 and values(out) == {0: 210, 1: 1, 2: 60, 3: 100, 4: 0}
    assert gateway.commands == [SetNetworkLimit(21.0), BmsHeartbeat(), SetBmsWatchdog(60.0),
                                SetBmsFallbackLimit(10.0)]


async def test_mbpoll_is_refused_writes_from_an_address_not_allowed() -> None:
    gateway = FakeGateway()
    async with running_server(gateway, bms_config(allow_write_from=["10.1.1.1"])) as server:
        code, _, err = await mbpoll(server, "-a 1 -0 -t 4 -r 0", 210)
        assert code == 1 and "Illegal function" in err
    assert gateway.applied == []


def documented_commands() -> list[list[str]]:
    """Every mbpoll line of the docs but those that need a shell (the session example, tested on its own)."""
    lines = re.findall(r"^(mbpoll -m tcp .*)$", DOCS.read_text(encoding="utf-8"), re.M)
    return [shlex.split(line) for line in lines if "$" not in line]


async def test_the_documented_session_write_sets_departure_and_energy() -> None:
    found = re.search(r"^(d=\$\(date .*\)\nmbpoll -m tcp .*)$", DOCS.read_text(encoding="utf-8"), re.M)
    assert found is not None, "docs/bms.md lost its session block example"
    gateway = FakeGateway(snapshot=replace(BASE_STATUS, time_s=time.time()))  # a departure is checked against now
    async with running_server(gateway, bms_config()) as server:
        assert server.tcp_address is not None
        script = found.group(1).replace(f"-p {DEMO_PORT} ", f"-p {server.tcp_address[1]} ")
        process = await asyncio.create_subprocess_exec("bash", "-c", script, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0 and b"Written 3 references" in out, err.decode()
    command, = gateway.commands
    assert isinstance(command, SetSessionNeed) and command.charger_id == "bay-1" and command.energy_kwh == 30.0
    assert command.departure is not None and (command.departure.hour, command.departure.minute) == (6, 0)
    assert 0 < command.departure.timestamp() - time.time() <= 2 * 86_400


async def test_every_mbpoll_line_in_the_docs_works_against_the_demo_address_layout() -> None:
    commands = documented_commands()
    assert len(commands) >= 5
    gateway = FakeGateway()
    async with running_server(gateway, bms_config()) as server:
        assert server.tcp_address is not None
        port = server.tcp_address[1]
        for argv in commands:
            assert argv[argv.index("-p") + 1] == DEMO_PORT and "127.0.0.1" in argv
            argv = [port_or(arg, str(port)) for arg in argv]
            process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), 10)
            assert process.returncode == 0, (argv, out.decode(), err.decode())
            assert "failed" not in (out + err).decode()
    assert SetNetworkLimit(25.0) not in gateway.commands  # 25.0 A is already the limit: nothing to change
    assert BmsHeartbeat() in gateway.commands and SetBmsWatchdog(60.0) in gateway.commands


def port_or(arg: str, port: str) -> str:
    return port if arg == DEMO_PORT else arg


async def test_mbpoll_over_rtu_reads_and_writes() -> None:
    gateway = FakeGateway()
    with pty_line() as (slave_end, master_end):
        config = bms_config(unit_id=5, rtu={"device": slave_end})
        async with running_server(gateway, config):
            for options in ("-a 5 -0 -t 3 -r 0 -c 5 -1", "-a 5 -0 -t 4 -r 0"):
                process = await asyncio.create_subprocess_exec(
                    "mbpoll", "-m", "rtu", "-b", "19200", "-P", "none", "-o", "2", *options.split(), master_end,
                    *(["170"] if "-1" not in options else []),
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(process.communicate(), 10)
                assert process.returncode == 0, err.decode()
                if "-1" in options:
                    assert values(out.decode()) == dict(enumerate([MAP_VERSION, 2, 1, 1, 245]))
    assert gateway.commands == [SetNetworkLimit(17.0), BmsHeartbeat()]
