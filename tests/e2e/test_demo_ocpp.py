"""``powershare demo --ocpp-chargers N``: a mixed fleet, with simulated OCPP chargers led through the gateway's own
endpoint next to the Modbus ones, and the limit kept on the cars' physical currents."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from gateway.cli.main import main
from gateway.demo.site import Demo, DemoOptions, Frame
from gateway.demo.view import render
from gateway.runtime.read_model import Availability


async def test_the_demo_leads_a_mixed_fleet() -> None:
    frames: list[Frame] = []
    demo = Demo(DemoOptions(chargers=2, ocpp_chargers=2, limit_a=40, duration_s=4, bms_port=0, seed=2))
    summary = await demo.run(asyncio.Event(), frames.append, 0.5)
    assert summary["over_limit_amp_seconds"] == 0
    assert set(summary["units"]) == {"cp1", "cp2", "oc1", "oc2"} and summary["ocpp_chargers"] == 2
    last = frames[-1].status
    assert [u.id for u in last.units] == ["cp1", "cp2", "oc1", "oc2"]
    assert all(u.availability is not Availability.UNAVAILABLE for u in last.units[2:]), last.units[2:]
    console = Console(record=True, width=160, color_system=None)
    console.print(render(frames[-1]))
    screen = console.export_text()
    assert "oc1 (3~ L3L1L2)" in screen and "oc2 (3~ L1L2L3)" in screen, screen


def test_a_bad_number_of_ocpp_chargers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--ocpp-chargers", "-1", "--duration", "1"]) == 2
    assert "--ocpp-chargers must be 0..50" in capsys.readouterr().err
