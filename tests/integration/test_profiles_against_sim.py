"""Every shipped profile, driven by the generic driver against the simulator serving that same profile, over TCP.

The simulator encodes what the profile says and the driver decodes what the profile says, so these tests catch a
profile the schema accepts but the drivers cannot use (a setpoint that cannot reach its minimum, a state enum the
reverse mapping cannot hit, a fail-safe timeout out of range), and every driver path against real Modbus framing.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from support.clock import ManualClock

from drivers.bus import ModbusBus
from drivers.codec import InvalidReading
from drivers.errors import UnsupportedOperation
from drivers.modbus_charger import ModbusCharger
from drivers.modbus_meter import ModbusMeter
from drivers.model import Iec61851State
from drivers.profile import ChargerProfile, KeepAlive, MeterProfile, ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.meter_sim import MeteredCharger, SimMeter
from drivers.sim.server import SimServer, TcpListen
from drivers.sim.vehicle import VehicleSpec
from drivers.transport import BusOptions, TcpEndpoint

REGISTRY = ProfileRegistry.shipped()
CHARGERS = REGISTRY.names("charger")
METERS = REGISTRY.names("meter")
LAG_S = 2.0
UNIT = 3
FAST = BusOptions(connect_timeout_s=0.5, backoff_initial_s=0.05)


@dataclass
class Rig:
    clock: ManualClock
    sim: SimCharger
    server: SimServer
    driver: ModbusCharger
    profile: ChargerProfile

    def settle(self) -> None:
        self.clock.advance(LAG_S + 0.5)


def without_pacing(profile: ChargerProfile) -> ChargerProfile:
    """The profile without its pacing quirks (a 250 ms gap per request, one write per 5 s): they are tested on their
    own; here they would only make the suite slow."""
    quirks = profile.quirks.model_copy(update={"inter_frame_gap_ms": 0.0, "min_write_interval_s": 0.0,
                                               "min_read_interval_s": 0.0})
    return profile.model_copy(update={"quirks": quirks})


@pytest.fixture(params=CHARGERS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    profile = without_pacing(REGISTRY.charger(request.param))
    clock = ManualClock()
    sim = SimCharger(profile, clock)
    sim.plug(VehicleSpec("car", onboard_limit_a=80, phases=profile.phases, lag_s=LAG_S, battery_kwh=500))
    async with SimServer({**sim.extra_units(), UNIT: sim}, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), FAST)
        yield Rig(clock, sim, server, ModbusCharger(profile, bus, UNIT, timeout_s=0.5, clock=clock), profile)
        await bus.close()


def tolerance(profile: ChargerProfile, name: str) -> float:
    step = profile.format_of(name).step
    return (step if step is not None else 1e-3) + 1e-6


def test_the_registry_ships_the_simulator_profiles() -> None:
    assert "powershare-sim" in CHARGERS and "powershare-sim-meter" in METERS


async def test_every_polled_point_reads_back_the_simulated_truth(rig: Rig) -> None:
    target = max(rig.profile.control.min_current_a, min(16.0, rig.profile.max_setpoint_a))
    await rig.driver.write_setpoint(target)
    rig.settle()
    reading = await rig.driver.read()
    truth = rig.sim.values()
    assert reading.invalid == ()
    assert reading.state is rig.sim.state() is Iec61851State.C
    decoded = await rig.driver.read_points(None)
    for name, value in decoded.items():
        assert not isinstance(value, InvalidReading), name
        if name in truth and isinstance(value, (int, float)) and not isinstance(value, bool):
            expected = rig.profile.decode(name, rig.sim.image.encode(name, truth[name]))  # as the device holds it
            assert isinstance(expected, (int, float))
            assert math.isclose(value, expected, abs_tol=tolerance(rig.profile, name), rel_tol=1e-6), name
    for phase, current in enumerate(reading.current_a):
        if current is not None:
            assert current == pytest.approx(rig.sim.phase_currents_a()[phase], abs=tolerance(
                rig.profile, f"current_l{phase + 1}"))
    assert reading.max_phase_current_a is None or reading.max_phase_current_a == pytest.approx(
        rig.driver.commandable_a(target), abs=tolerance(rig.profile, "current_l1"))


async def test_setpoints_across_the_range_reach_the_vehicle(rig: Rig) -> None:
    control, profile = rig.profile.control, rig.profile
    requests = sorted({0.0, control.min_current_a / 2, control.min_current_a, control.min_current_a + 1.37,
                       (control.min_current_a + profile.max_setpoint_a) / 2, profile.max_setpoint_a,
                       profile.max_setpoint_a + 10})
    for requested in requests:
        sent = rig.driver.commandable_a(requested)
        assert sent <= requested and (sent == 0 or sent >= control.min_current_a)
        await rig.driver.write_setpoint(requested)
        rig.settle()
        assert rig.sim.pilot_a == pytest.approx(sent, abs=1e-6)
        assert max(rig.sim.phase_currents_a()) == pytest.approx(sent, abs=1e-6)  # the car followed
        reading = await rig.driver.read()
        assert reading.invalid == ()
        assert reading.state is (Iec61851State.C if sent else Iec61851State.B)
        if reading.setpoint_a is not None and profile.setpoint_readback_point == "setpoint_readback":
            assert reading.setpoint_a == pytest.approx(sent, abs=tolerance(profile, "setpoint_readback"))


async def test_failsafe_and_watchdog_behave_as_the_profile_says(rig: Rig) -> None:
    profile, driver, sim = rig.profile, rig.driver, rig.sim
    if not driver.capabilities.has_failsafe:
        with pytest.raises(UnsupportedOperation):
            await driver.configure_failsafe(6, 30)
        return
    timeout = 30.0
    fmt = profile.format_of("failsafe_timeout") if profile.points.failsafe_timeout is not None else None
    if fmt is not None and fmt.valid_min is not None:
        timeout = max(timeout, fmt.valid_min)
    timeout = max(timeout, profile.watchdog.fixed_timeout_s or 0)
    failsafe = profile.control.min_current_a
    await driver.configure_failsafe(failsafe, timeout)
    await driver.write_setpoint(profile.max_setpoint_a)
    period = profile.watchdog.period_s(timeout)
    assert period is not None
    for _ in range(6):  # keep-alives at the profile's period hold the watchdog off
        rig.clock.advance(period * 0.9)
        await driver.keep_alive()
        if profile.watchdog.keep_alive is KeepAlive.TRAFFIC:
            await driver.read()
    rig.settle()
    assert not sim.in_failsafe and sim.pilot_a == pytest.approx(driver.commandable_a(profile.max_setpoint_a))
    rig.clock.advance(timeout + 1)  # the gateway goes quiet
    sim.state()
    assert sim.in_failsafe and sim.pilot_a == pytest.approx(failsafe)
    rig.settle()
    assert max(sim.phase_currents_a()) == pytest.approx(failsafe)


async def test_garbage_is_reported_invalid_and_never_passed_on_as_a_number(rig: Rig) -> None:
    await rig.driver.write_setpoint(rig.profile.max_setpoint_a)
    rig.settle()
    rig.server.set_fault(UNIT, Fault(FaultKind.GARBAGE))
    reading = await rig.driver.read()
    assert reading.invalid, "a garbage answer must be noticed"
    judged = {n for n in rig.profile.poll_points() if rig.sim.image._garbage.get(n) is not None}
    assert judged <= set(reading.invalid) | {"state"}
    for name in ("power", "energy", "session_energy"):
        if name in judged:
            assert getattr(reading, f"{name}_wh" if "energy" in name else f"{name}_w") is None
    for prefix in ("current", "voltage"):
        for i, value in enumerate(getattr(reading, f"{prefix}_a" if prefix == "current" else f"{prefix}_v")):
            if f"{prefix}_l{i + 1}" in judged:
                assert value is None


async def test_identity_is_read_where_the_profile_has_it(rig: Rig) -> None:
    if not any(rig.profile.has(n) for n in rig.profile.IDENTITY_ROLES):
        with pytest.raises(UnsupportedOperation):
            await rig.driver.read_identity()
        return
    identity = await rig.driver.read_identity()
    if rig.profile.has("serial") and rig.profile.point("serial").type.is_text:
        assert identity.serial is not None and "SIM-0001".startswith(identity.serial[:4])


@pytest.fixture(params=METERS)
async def meter_rig(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimMeter, SimServer, ModbusMeter]]:
    profile: MeterProfile = REGISTRY.meter(request.param)
    clock = ManualClock()
    charger = SimCharger(REGISTRY.charger("powershare-sim"), clock, initial_setpoint_a=16)
    charger.plug(VehicleSpec("car", lag_s=0))
    sim = SimMeter(profile, clock, background_a=(10.0, 5.0, 2.5), chargers=[MeteredCharger(charger, (1, 2, 0))])
    async with SimServer({1: sim}, TcpListen()) as server:
        bus = ModbusBus(TcpEndpoint("127.0.0.1", server.port), FAST)
        clock.advance(1)
        yield sim, server, ModbusMeter(profile, bus, 1, timeout_s=0.5)
        await bus.close()


async def test_meter_reads_background_plus_chargers_on_their_phases(
        meter_rig: tuple[SimMeter, SimServer, ModbusMeter]) -> None:
    sim, _, driver = meter_rig
    reading = await driver.read()
    assert reading.invalid == ()
    assert sim.phase_currents_a() == (26.0, 21.0, 18.5)  # charger L1->site L2, L2->L3, L3->L1
    for got, want in zip(reading.current_a, (26.0, 21.0, 18.5), strict=True):
        assert got is None or got == pytest.approx(want, abs=0.1)


async def test_meter_garbage_is_invalid(meter_rig: tuple[SimMeter, SimServer, ModbusMeter]) -> None:
    _, server, driver = meter_rig
    server.set_fault(1, Fault(FaultKind.GARBAGE))
    reading = await driver.read()
    assert "current_l1" in reading.invalid and reading.current_a[0] is None
