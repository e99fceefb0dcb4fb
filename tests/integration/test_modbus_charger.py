"""The generic charger driver's behaviour: faults, write discipline, quirks, keep-alives, over real Modbus."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.resources import files
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.clock import ManualClock
from support.ptybridge import PtyBridge

from drivers.bus import ModbusBus
from drivers.errors import ConnectionLost, DeviceBusy, DeviceRejected, DeviceTimeout, DriverError
from drivers.modbus_charger import ModbusCharger, commandable_a
from drivers.model import Iec61851State
from drivers.ports import ChargerDriver, IdentityReader
from drivers.profile import ChargerProfile, PauseMethod, ProfileRegistry, parse_profile
from drivers.sim.charger_sim import SimCharger
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import SimServer, TcpListen
from drivers.sim.vehicle import VehicleSpec
from drivers.transport import BusOptions, SerialLine, TcpEndpoint

FAST = BusOptions(connect_timeout_s=0.5, backoff_initial_s=0.01, backoff_max_s=0.05, late_answer_guard_s=0.1)
SIM_YAML: dict[str, Any] = yaml.safe_load((files("profiles") / "chargers" / "powershare-sim.yaml").read_text())


def variant(**changes: Any) -> ChargerProfile:
    """The simulator's profile with some keys replaced (validated like any profile file)."""
    data = copy.deepcopy(SIM_YAML)
    for key, value in changes.items():
        if key == "points":
            data["points"].update(value)
        else:
            data[key] = value
    profile = parse_profile(data, "variant.yaml")
    assert isinstance(profile, ChargerProfile)
    return profile


class RecordingCharger(SimCharger):
    """Remembers every point write the device accepted, in order."""

    def __init__(self, profile: ChargerProfile, clock: Callable[[], float]) -> None:
        super().__init__(profile, clock)
        self.writes: list[tuple[str, object]] = []

    def write(self, table: Any, address: int, values: Sequence[int], function_code: int) -> int | None:
        written = self.image.decode_write(table, address, values, function_code)
        code = super().write(table, address, values, function_code)
        if code is None and isinstance(written, dict):
            self.writes += list(written.items())
        return code


class Rig:
    def __init__(self, profile: ChargerProfile) -> None:
        self.clock = ManualClock()
        self.profile = profile
        self.sim = RecordingCharger(profile, self.clock)
        self.sim.plug(VehicleSpec("car", lag_s=1.0, battery_kwh=500))
        self.server = SimServer({1: self.sim}, TcpListen())

    async def __aenter__(self) -> Rig:
        await self.server.start()
        self.bus = ModbusBus(TcpEndpoint("127.0.0.1", self.server.port), FAST)
        self.driver = ModbusCharger(self.profile, self.bus, 1, timeout_s=0.3, comm_timeout_s=20, clock=self.clock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bus.close()
        await self.server.stop()

    def transactions(self) -> int:
        stats = self.bus.stats(1)
        return stats.successes + stats.failures


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with Rig(ProfileRegistry.shipped().charger("powershare-sim")) as r:
        yield r


async def test_the_driver_implements_the_ports(rig: Rig) -> None:
    assert isinstance(rig.driver, ChargerDriver) and isinstance(rig.driver, IdentityReader)


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(FaultKind.SILENT), DeviceTimeout),
    (Fault(FaultKind.LATE, late_s=0.5), DeviceTimeout),
    (Fault(FaultKind.EXCEPTION, exception_code=2), DeviceRejected),
    (Fault(FaultKind.EXCEPTION, exception_code=4), DeviceRejected),
    (Fault(FaultKind.EXCEPTION, exception_code=6), DeviceBusy),
    (Fault(FaultKind.DROP), ConnectionLost),
])
async def test_each_fault_is_its_documented_error_for_reads_and_writes(rig: Rig, fault: Fault,
                                                                         error: type[DriverError]) -> None:
    before = await rig.driver.read()
    rig.server.set_fault(1, fault)
    with pytest.raises(error):
        await rig.driver.read()
    with pytest.raises(error):
        await rig.driver.write_setpoint(16)
    if fault.kind is FaultKind.EXCEPTION:
        assert rig.sim.setpoint_a == 0  # a refused write changed nothing
    rig.server.set_fault(1, Fault())
    rig.clock.advance(0.1)
    assert (await rig.driver.read()).state == before.state  # and the unit recovers
    await rig.driver.write_setpoint(16)
    assert rig.sim.setpoint_a == 16  # the unknown outcome of the failed write is not mistaken for an ack


async def test_garbage_yields_invalid_points_never_numbers(rig: Rig) -> None:
    await rig.driver.write_setpoint(20)
    rig.clock.advance(5)
    rig.server.set_fault(1, Fault(FaultKind.GARBAGE))
    reading = await rig.driver.read()
    assert reading.state is None and reading.current_a == (None, None, None) and reading.power_w is None
    assert {"state", "current_l1", "current_l2", "current_l3", "voltage_l1", "power"} <= set(reading.invalid)
    assert "NaN" not in str(reading) and "6553" not in str(reading)
    assert "outside the valid range" in rig.driver.last_invalid["current_l1"] or \
        "not available" in rig.driver.last_invalid["current_l1"]


async def test_every_setpoint_is_written_even_if_unchanged(rig: Rig) -> None:
    """The controller re-sends a setpoint when the read-back differs; the driver must not swallow it."""
    await rig.driver.write_setpoint(16)
    rig.sim.setpoint_a = 32  # changed behind the gateway's back (a display, a reboot to defaults)
    rig.clock.advance(1)
    assert (await rig.driver.read()).setpoint_a == 32
    await rig.driver.write_setpoint(16)
    assert rig.sim.setpoint_a == 16 and rig.sim.writes[-1] == ("setpoint", 16.0)


async def test_the_setpoint_is_refreshed_by_keep_alive_when_the_profile_asks() -> None:
    profile = variant(quirks={"setpoint_refresh_s": 60})
    async with Rig(profile) as r:
        await r.driver.write_setpoint(16)
        r.clock.advance(30)
        await r.driver.keep_alive()
        assert r.sim.writes.count(("setpoint", 16.0)) == 1
        r.clock.advance(31)
        await r.driver.keep_alive()
        assert r.sim.writes.count(("setpoint", 16.0)) == 2


async def test_pause_by_disable_writes_the_setpoint_before_enabling() -> None:
    profile = variant(control={"min_current_a": 6, "pause": "disable"}, quirks={"write_needs_enable": True},
                      points={"setpoint": {**SIM_YAML["points"]["setpoint"], "valid_min": 6}})
    async with Rig(profile) as r:
        assert not r.sim.enabled  # this kind of device starts disabled
        await r.driver.write_setpoint(10)
        assert r.sim.writes == [("setpoint", 10.0), ("enable", 1), ("setpoint", 10.0)]
        assert r.sim.pilot_a == 10
        r.sim.writes.clear()
        await r.driver.write_setpoint(0)
        assert r.sim.writes == [("enable", 0)] and r.sim.pilot_a == 0
        r.sim.writes.clear()
        await r.driver.write_setpoint(8)
        assert r.sim.writes[0] == ("setpoint", 8.0) and r.sim.pilot_a == 8
        r.sim.enabled = False  # disabled behind the gateway's back: the next write enables it again
        r.sim.writes.clear()
        await r.driver.write_setpoint(8)
        assert r.sim.writes == [("setpoint", 8.0), ("enable", 1), ("setpoint", 8.0)] and r.sim.pilot_a == 8
        with pytest.raises(ValueError):
            await r.driver.write_setpoint(-1)


async def test_init_writes_and_failsafe_are_resent_after_the_device_may_have_forgotten() -> None:
    profile = variant(aux={"standby": {"table": "holding", "address": 105, "access": "rw", "write_fc": 6}},
                      quirks={"init_writes": [{"point": "standby", "value": 4}]})
    async with Rig(profile) as r:
        await r.driver.configure_failsafe(8, 20)
        await r.driver.write_setpoint(16)
        assert r.sim.aux["standby"] == 4 and r.sim.failsafe_current_a == 8
        r.sim.aux.clear()  # a power cycle: the device forgot
        r.sim.failsafe_current_a = 0
        r.sim.setpoint_a = 0
        r.server.set_fault(1, Fault(FaultKind.SILENT))
        with pytest.raises(DeviceTimeout):
            await r.driver.read()
        r.server.set_fault(1, Fault())
        await r.driver.write_setpoint(16)
        assert r.sim.aux["standby"] == 4 and r.sim.failsafe_current_a == 8 and r.sim.setpoint_a == 16


async def test_heartbeat_keep_alive_is_sent_once_per_period(rig: Rig) -> None:
    period = rig.profile.watchdog.period_s(20)
    assert period == 5
    await rig.driver.keep_alive()
    await rig.driver.keep_alive()
    assert rig.sim.writes.count(("heartbeat", 1)) == 1
    rig.clock.advance(period)
    await rig.driver.keep_alive()
    assert rig.sim.writes.count(("heartbeat", 1)) == 2


@pytest.mark.parametrize(("keep_alive", "expected"), [("timeout", ("failsafe_timeout", 20.0)),
                                                       ("setpoint", ("setpoint", 12.0))])
async def test_other_keep_alive_kinds_rewrite_their_point(keep_alive: str, expected: tuple[str, float]) -> None:
    async with Rig(variant(watchdog={"keep_alive": keep_alive})) as r:
        await r.driver.write_setpoint(12)
        r.clock.advance(10)
        await r.driver.keep_alive()
        assert r.sim.writes[-1] == expected


async def test_traffic_keep_alive_reads_only_when_the_line_was_quiet() -> None:
    async with Rig(variant(watchdog={"keep_alive": "traffic"})) as r:
        await r.driver.read()
        count = r.transactions()
        await r.driver.keep_alive()
        assert r.transactions() == count
        r.clock.advance(10)
        await r.driver.keep_alive()
        assert r.transactions() == count + 1 and r.sim.writes == []


async def test_failsafe_settings_that_do_not_fit_change_nothing(rig: Rig) -> None:
    with pytest.raises(ValueError, match="valid range"):
        await rig.driver.configure_failsafe(8, 0.5)  # the device's timeout register starts at 1 s
    with pytest.raises(ValueError):
        await rig.driver.configure_failsafe(8, math.nan)
    assert rig.sim.writes == []
    await rig.driver.configure_failsafe(7.99, 15)
    assert rig.sim.failsafe_current_a == pytest.approx(7.9) and rig.sim.failsafe_timeout_s == 15


async def test_state_rules_profiles_are_served_and_decoded() -> None:
    points = dict(SIM_YAML["points"])
    del points["state"]
    data = copy.deepcopy(SIM_YAML) | {"points": points}
    data["aux"] = {"plug": {"table": "input", "address": 60, "enum": {0: "out", 1: "in"}},
                   "relay": {"table": "input", "address": 61}}
    data["state_rules"] = [{"when": {"plug": ["out"]}, "state": "A"}, {"when": {"relay": [1]}, "state": "C"},
                           {"state": "B"}]
    profile = parse_profile(data, "rules.yaml")
    assert isinstance(profile, ChargerProfile)
    async with Rig(profile) as r:
        assert (await r.driver.read()).state is Iec61851State.B
        await r.driver.write_setpoint(16)
        r.clock.advance(2)
        assert (await r.driver.read()).state is Iec61851State.C
        r.sim.unplug()
        assert (await r.driver.read()).state is Iec61851State.A


async def test_rtu_line_two_chargers_one_silent() -> None:
    profile = ProfileRegistry.shipped().charger("powershare-sim")
    clock = ManualClock()
    sims = {1: SimCharger(profile, clock), 2: SimCharger(profile, clock)}
    bridge = PtyBridge()
    try:
        async with SimServer(sims, SerialLine(bridge.a)) as server:
            bus = ModbusBus(SerialLine(bridge.b), FAST)
            live = ModbusCharger(profile, bus, 1, timeout_s=0.5, clock=clock)
            dead = ModbusCharger(profile, bus, 2, timeout_s=0.2, clock=clock)
            server.set_fault(2, Fault(FaultKind.LATE, late_s=0.25))
            for current in (6, 10, 16):
                with pytest.raises(DeviceTimeout):
                    await dead.read()
                await live.write_setpoint(current)
                assert (await live.read()).setpoint_a == current
            assert sims[1].setpoint_a == 16
            await bus.close()
    finally:
        bridge.close()


PROFILES = [ProfileRegistry.shipped().charger(n) for n in ProfileRegistry.shipped().names("charger")]


@given(st.sampled_from(PROFILES), st.floats(min_value=0, max_value=200, allow_nan=False))
def test_a_commanded_setpoint_is_never_above_the_request_nor_between_zero_and_minimum(
        profile: ChargerProfile, requested: float) -> None:
    sent = commandable_a(profile, requested)
    assert sent <= requested + 1e-9
    assert sent <= min(profile.max_setpoint_a, profile.nameplate_a) + 1e-9
    assert sent == 0 or sent >= profile.control.min_current_a
    if sent or profile.control.pause is not PauseMethod.DISABLE:  # pausing by disable never writes 0
        profile.encode("setpoint", sent)  # always representable in the register


async def test_pacing_quirks_cache_fast_polls_and_space_writes() -> None:
    async with Rig(variant(quirks={"min_read_interval_s": 10, "min_write_interval_s": 0.2})) as r:
        first = await r.driver.read()
        count = r.transactions()
        assert await r.driver.read() is first and r.transactions() == count  # too soon: the last poll stands
        r.clock.advance(10)
        await r.driver.read()
        assert r.transactions() > count
        await r.driver.write_setpoint(10)
        started = time.monotonic()
        await r.driver.write_setpoint(12)
        assert time.monotonic() - started >= 0.2 and r.sim.setpoint_a == 12


async def test_the_heartbeat_life_bit_reads_back_cleared_after_half_the_timeout(rig: Rig) -> None:
    await rig.driver.keep_alive()
    assert (await rig.driver.read_points(["heartbeat"]))["heartbeat"] == 1
    rig.clock.advance(rig.sim.failsafe_timeout_s / 2)
    assert (await rig.driver.read_points(["heartbeat"]))["heartbeat"] == 0
