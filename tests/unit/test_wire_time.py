"""The wire-time figures are computed from read plans; here the computed bytes meet the bytes on a real serial line."""

from __future__ import annotations

import pytest
from support.clock import ManualClock
from support.ptybridge import PtyBridge

from drivers.bus import ModbusBus
from drivers.modbus_charger import ModbusCharger
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.server import SimServer
from drivers.transport import SerialLine
from drivers.wire_time import main, poll_cycle, poll_transactions, write_transaction

REGISTRY = ProfileRegistry.shipped()


@pytest.mark.parametrize("name", ["heidelberg-energy-control", "powershare-sim", "abb-terra-ac"])
async def test_computed_bytes_are_the_bytes_that_cross_the_line(name: str) -> None:
    profile = REGISTRY.charger(name)
    clock = ManualClock()
    sim = SimCharger(profile, clock)
    bridge = PtyBridge()
    try:
        async with SimServer({**sim.extra_units(), 1: sim}, SerialLine(bridge.a)):
            bus = ModbusBus(SerialLine(bridge.b))
            driver = ModbusCharger(profile, bus, 1, timeout_s=0.5, clock=clock)
            await driver.read()
            assert bridge.bytes_forwarded == sum(t.rtu_bytes for t in poll_transactions(profile))
            await driver.write_setpoint(0)  # the first write also sends the profile's init writes
            before = bridge.bytes_forwarded
            await driver.write_setpoint(profile.control.min_current_a)
            assert bridge.bytes_forwarded - before == write_transaction(profile, "setpoint").rtu_bytes
            await bus.close()
    finally:
        bridge.close()


def test_cycle_time_floor_and_bus_gap() -> None:
    line = SerialLine("x", 19200, "E")
    heidelberg = poll_cycle(REGISTRY.get("heidelberg-energy-control"), 6, line)
    t35 = 3.5 * 11 / 19200
    assert heidelberg.transactions == 12
    assert heidelberg.floor_s == pytest.approx(heidelberg.rtu_bytes * 11 / 19200 + 2 * t35 * 12)
    assert heidelberg.bus_s == pytest.approx(heidelberg.rtu_bytes * 11 / 19200 + (t35 + 0.1) * 12)  # 100 ms quirk
    sim = poll_cycle(REGISTRY.get("powershare-sim"), 6, line)
    assert sim.bus_s == pytest.approx(sim.floor_s)


def test_the_figure_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["heidelberg-energy-control", "powershare-sim", "--units", "6"]) == 0
    out = capsys.readouterr().out
    assert "heidelberg-energy-control" in out and "floor ms" in out
    assert main(["no-such-profile"]) == 2
