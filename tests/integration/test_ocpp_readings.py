"""What an OCPP follower's reading may contain: MeterValues parsing, status mapping, and (property-based) that a
current handed to the controller is never older than the station's freshness bound, nor history, nor from before
the connector stopped serving a car."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clock import ManualClock

from drivers.errors import DeviceTimeout
from drivers.model import Iec61851State
from drivers.ocpp.meter_values import MeterValuesError, format_time, parse_meter_values, parse_time
from drivers.ocpp.station import LIVE_WINDOW_S, CountingIds, Station, StationSettings
from drivers.ocpp.status import error_number, iec_state

WALL = 1_700_000_000.0


def entry(stamp: float, *values: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": format_time(stamp), "sampled_value": list(values)}


def test_meter_values_are_read_per_phase_with_units_and_the_newest_entry_wins() -> None:
    sample = parse_meter_values([
        entry(WALL + 1, {"value": "16.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
              {"value": "16.0", "measurand": "Current.Import", "phase": "L2"},
              {"value": "0.2", "measurand": "Current.Import", "phase": "N"},
              {"value": "11.2", "measurand": "Power.Active.Import", "unit": "kW"},
              {"value": "123.456", "unit": "kWh"},
              {"value": "32", "measurand": "Current.Offered", "unit": "A"},
              {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
              {"value": "99", "measurand": "Current.Import", "phase": "L3", "location": "EV"},
              {"value": "abc", "measurand": "Current.Import", "phase": "L3", "format": "SignedData"}),
        entry(WALL, {"value": "1.0", "measurand": "Current.Import", "phase": "L1"}),  # older: overwritten
    ])
    assert sample.timestamp == WALL + 1
    assert sample.current_a == (16.5, 16.0, None) and sample.current_unphased_a is None
    assert sample.power_w == 11200 and sample.energy_wh == 123456 and sample.offered_a == 32
    assert sample.voltage_v == (231, None, None) and sample.invalid == ()


def test_values_that_make_no_sense_are_listed_not_guessed() -> None:
    sample = parse_meter_values([entry(WALL, {"value": "NaN", "measurand": "Current.Import", "phase": "L1"},
                                       {"value": "-3", "measurand": "Current.Import", "phase": "L2"},
                                       {"value": "5", "measurand": "Current.Import", "phase": "L3", "unit": "mA"},
                                       {"value": "x", "measurand": "Power.Active.Import"},
                                       {"value": "7", "measurand": "Current.Import"})])
    assert sample.current_a == (None, None, None) and sample.current_unphased_a == 7
    assert sample.invalid == ("Current.Import.L1", "Current.Import.L2", "Current.Import.L3", "Power.Active.Import")


@pytest.mark.parametrize("meter_value", [[], [{"timestamp": "soon", "sampled_value": []}],
                                         [{"timestamp": "2024-01-01T00:00:00Z"}]])
def test_a_malformed_meter_value_list_is_refused_as_a_whole(meter_value: list[dict[str, Any]]) -> None:
    with pytest.raises(MeterValuesError):
        parse_meter_values(meter_value)


def test_times_without_a_zone_are_utc() -> None:
    assert parse_time("2023-11-14T22:13:20") == parse_time("2023-11-14T22:13:20Z") == WALL
    assert parse_time(format_time(WALL + 0.25)) == WALL + 0.25


def test_statuses_map_to_iec_states_and_plugged_means_a_car_is_served() -> None:
    assert iec_state("Charging", False) is Iec61851State.C
    assert iec_state("SuspendedEVSE", True) is Iec61851State.B
    assert iec_state("Preparing", False) is Iec61851State.A and iec_state("Preparing", True) is Iec61851State.B
    assert iec_state("Finishing", False) is Iec61851State.A
    assert iec_state("Faulted", False) is Iec61851State.F
    assert error_number("NoError") == 0 and error_number("GroundFailure") == 3
    assert error_number("VendorSpecificThing") == error_number("OtherError")


class _Link:
    closed = asyncio.Event()

    async def call(self, payload: Any, suppress: bool = True, unique_id: Any = None,
                   skip_schema_validation: bool = False) -> Any:
        raise AssertionError("not called here")


def station(clock: ManualClock, wall: ManualClock) -> Station:
    made = Station(StationSettings("CP-1", None, meter_interval_s=2), ids=CountingIds(),
                   authorize=lambda tag: "Accepted", clock=clock, wall=wall)
    made.attach(_Link())
    made.provisioning.done = True
    return made


Step = tuple[str, float, float]
steps = st.lists(st.one_of(
    st.tuples(st.just("advance"), st.floats(0.0, 8.0), st.just(0.0)),
    st.tuples(st.just("sample"), st.floats(-60.0, 2.0), st.just(0.0)),  # stamp relative to wall
    st.tuples(st.sampled_from(["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"]),
              st.just(0.0), st.just(0.0)),
    st.tuples(st.sampled_from(["start", "stop"]), st.just(0.0), st.just(0.0)),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_a_current_handed_to_the_controller_is_fresh_live_and_from_the_current_service(script: list[Step]) -> None:
    clock, wall = ManualClock(), ManualClock(WALL)
    s = station(clock, wall)
    received: dict[float, tuple[float, float, int]] = {}  # L1 value -> (station time received, stamp, step)
    service_ended_at = -1
    for step, (op, x, _) in enumerate(script):
        was_serving = s.connectors[1].serving
        if op == "advance":
            clock.advance(x)
            wall.advance(x)
        elif op == "sample":
            value = step + 0.5  # every sample carries its own, recognisable current
            received[value] = (clock(), wall() + x, step)
            s.meter_values(1, [entry(wall() + x, {"value": str(value), "measurand": "Current.Import",
                                                  "phase": "L1"})])
        elif op == "start":
            s.start_transaction(1, "TAG", 0.0)
        elif op == "stop":
            if s.connectors[1].transaction_id is not None:
                s.stop_transaction(s.connectors[1].transaction_id, 10.0)
        else:
            s.status(1, op, "NoError")
        if was_serving and not s.connectors[1].serving:
            service_ended_at = step
        if s.connectors[1].status is None:
            continue
        try:
            reading = s.reading(1, 1)
        except DeviceTimeout:
            assert s.connectors[1].serving  # only a connector serving a car can go stale
            continue
        l1 = reading.current_a[0]
        if l1 is None or l1 == 0.0:
            continue
        got_at, stamp, got_step = received[l1]
        assert clock() - got_at <= s.settings.stale_after_s  # fresh
        assert stamp >= got_at - clock() + wall() - LIVE_WINDOW_S  # it was live (not history) when it arrived
        assert got_step > service_ended_at  # nothing from a service that has ended
