"""``powershare simulate`` and ``powershare probe``: a real simulator process probed over TCP, and RTU in-process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.paths import REPO
from support.ptybridge import PtyBridge

from drivers.profile import ProfileRegistry
from drivers.sim.faults import Fault, FaultKind
from drivers.transport import SerialLine
from gateway.cli.main import build_parser, main
from gateway.cli.probe import EXIT_DEVICE, EXIT_INVALID, EXIT_OK, EXIT_USAGE, probe
from gateway.cli.simulate import build_site, parse_cars, parse_units, serve

ROOT = REPO


@pytest.fixture
def simulator() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``simulate`` in its own process on a port the OS chooses; yields (port, process)."""
    command = [sys.executable, "-m", "gateway.cli", "simulate", "--tcp", "127.0.0.1:0", "--units", "1-2",
               "--meter", "powershare-sim-meter", "--background", "10,5,2", "--fault", "2=garbage", "--speed", "5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("running until"):
            break
    banner = "".join(seen)
    found = re.search(r"tcp 127\.0\.0\.1:(\d+) units 1,2,100", banner)
    assert found, banner
    try:
        yield int(found.group(1)), process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_probe_reads_a_simulated_charger_and_meter_and_stop_is_clean(
        simulator: tuple[int, subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]) -> None:
    port, process = simulator
    assert main(["probe", "--profile", "powershare-sim", "--tcp", f"127.0.0.1:{port}", "--unit", "1"]) == EXIT_OK
    report = capsys.readouterr().out
    assert "state        B" in report and "serial SIM-0001" in report and "invalid      none" in report
    assert "device reports 32 A" in report

    assert main(["probe", "--profile", "powershare-sim", "--tcp", f"127.0.0.1:{port}", "--unit", "2"]) == EXIT_INVALID
    report = capsys.readouterr().out
    assert "current_l1: not available (raw 0xFFFF)" in report and "state        invalid" in report

    assert main(["probe", "--profile", "powershare-sim-meter", "--tcp", f"127.0.0.1:{port}",
                 "--unit", "100"]) == EXIT_OK
    assert "L1 10.0 A  L2 5.0 A  L3 2.0 A" in capsys.readouterr().out

    assert main(["probe", "--profile", "powershare-sim", "--tcp", f"127.0.0.1:{port}", "--unit", "7",
                 "--timeout", "0.3"]) == EXIT_DEVICE
    assert "hint:" in capsys.readouterr().out

    assert main(["probe", "--lang", "de", "--profile", "powershare-sim", "--tcp", f"127.0.0.1:{port}", "--unit",
                 "1"]) == EXIT_OK
    report = capsys.readouterr().out
    assert "Zustand      B" in report and "Seriennummer SIM-0001" in report and "unplausibel  keine" in report
    assert "Typenschild  32 A (Profil), Gerät meldet 32 A" in report and "L1 230 V" in report
    assert main(["probe", "--profile", "powershare-sim-meter", "--tcp", f"127.0.0.1:{port}", "--unit", "100",
                 "--lang", "de"]) == EXIT_OK
    assert "L1 10,0 A  L2 5,0 A  L3 2,0 A" in capsys.readouterr().out

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0
    assert process.stdout is not None and "stopped" in process.stdout.read()


@pytest.mark.parametrize("argv", [
    ["simulate"],
    ["simulate", "--tcp", "127.0.0.1:0", "--units", "0-3"],
    ["simulate", "--tcp", "127.0.0.1:0", "--cars", "1:90"],
    ["simulate", "--tcp", "127.0.0.1:0", "--profile", "no-such-charger"],
    ["simulate", "--tcp", "nonsense"],
    ["simulate", "--tcp", "127.0.0.1:0", "--fault", "1=melt"],
    ["probe", "--profile", "no-such-charger", "--tcp", "127.0.0.1:1"],
    ["probe", "--profile", "powershare-sim", "--tcp", "127.0.0.1:1", "--unit", "300"],
])
def test_bad_arguments_are_refused_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err.strip()


def test_probe_of_nothing_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--profile", "powershare-sim", "--tcp", "127.0.0.1:1", "--timeout", "0.3"]) == EXIT_DEVICE
    assert "cannot connect" in capsys.readouterr().out


def test_unit_and_car_lists() -> None:
    assert parse_units("1-3,5,7-8") == [1, 2, 3, 5, 7, 8]
    cars = parse_cars("1-2:16:1,4", [1, 2, 3, 4])
    assert sorted(cars) == [1, 2, 4] and cars[1].onboard_limit_a == 16 and cars[1].phases == 1
    assert cars[4].onboard_limit_a == 32 and parse_cars("none", [1]) == {}
    assert sorted(parse_cars("all", [1, 3])) == [1, 3]


async def test_simulate_and_probe_over_an_rtu_line() -> None:
    bridge = PtyBridge()
    try:
        args = build_parser().parse_args(["simulate", "--rtu", bridge.a, "--rtu-units", "4,5", "--cars", "4"])
        site = build_site(args)
        stop, ready = asyncio.Event(), asyncio.Event()
        serving = asyncio.create_task(serve(site, [(5, Fault(FaultKind.SILENT))], 0.0, stop, ready))
        try:
            async with asyncio.timeout(5):
                await ready.wait()
            profile = ProfileRegistry.shipped().charger("powershare-sim")
            out: list[str] = []
            assert await probe(profile, SerialLine(bridge.b), 4, 0.5, out) == EXIT_OK
            assert any("serial SIM-0001" in line for line in out)
            out.clear()
            assert await probe(profile, SerialLine(bridge.b), 5, 0.2, out) == EXIT_DEVICE
            assert any("no answer" in line for line in out)
        finally:
            stop.set()
            await serving
        assert all(line.server is None for line in site.lines)
    finally:
        bridge.close()
