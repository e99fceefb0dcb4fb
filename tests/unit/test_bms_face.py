"""The BMS face's decisions without a socket: which commands a write becomes, all or nothing, what reads show."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from support.bms import BASE_STATUS, FakeGateway

from gateway.faces.bms.face import BmsFace
from gateway.faces.bms.refusal import ExceptionCode, Refusal
from gateway.faces.bms.register_map import Table
from gateway.runtime.commands import (
    BmsHeartbeat,
    Command,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetEnabled,
    SetNetworkLimit,
    SetSessionNeed,
    SetUnitLimit,
)
from gateway.runtime.read_model import SiteStatus

ORIGIN = "bms 10.0.0.5:40000"


def settings_of(s: SiteStatus) -> tuple[float, bool, float, float, tuple[float, ...]]:
    return (s.network_limit_a, s.enabled, s.bms_watchdog_s, s.bms_fallback_limit_a,
            tuple(u.limit_a for u in s.units))


def test_a_block_write_becomes_commands_in_address_order_then_one_heartbeat() -> None:
    gw = FakeGateway()
    assert BmsFace(gw).write(0, [180, 0, 60, 100, 7], ORIGIN) is None
    assert gw.applied == [(SetNetworkLimit(18.0), ORIGIN), (SetEnabled(False), ORIGIN), (SetBmsWatchdog(60.0), ORIGIN),
                          (SetBmsFallbackLimit(10.0), ORIGIN), (BmsHeartbeat(), ORIGIN)]


def test_a_network_limit_write_is_a_heartbeat_even_when_the_limit_is_unchanged() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.write(0, [250], ORIGIN) is None  # 25.0 A: what it already is
    assert gw.commands == [BmsHeartbeat()]
    assert face.write(1, [1, 0], ORIGIN) is None  # unchanged enabled and watchdog: nothing to persist, no heartbeat
    assert gw.commands == [BmsHeartbeat()]


def test_heartbeat_register_reads_back_the_last_value_written() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.read(Table.HOLDING, 4, 1) == [0]
    assert face.write(4, [4242], ORIGIN) is None
    assert gw.commands == [BmsHeartbeat()]
    assert face.read(Table.HOLDING, 4, 1) == [4242]


def test_charger_limit_write_names_the_charger_by_id() -> None:
    gw = FakeGateway()
    assert BmsFace(gw).write(100, [100, 60], ORIGIN) is None
    assert gw.commands == [SetUnitLimit("bay-1", 10.0), SetUnitLimit("bay-2", 6.0)]


def test_out_of_range_anywhere_in_a_block_changes_nothing() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    result = face.write(0, [180, 1, 60, 401], ORIGIN)  # HR3 above the 40 A installation limit
    assert isinstance(result, Refusal) and result.code is ExceptionCode.ILLEGAL_VALUE
    assert "HR3" in result.reason and "400" in result.reason
    assert gw.applied == []


def test_undefined_address_in_a_block_changes_nothing() -> None:
    gw = FakeGateway()
    result = BmsFace(gw).write(3, [60, 1, 0], ORIGIN)  # HR5 does not exist
    assert result == Refusal(ExceptionCode.ILLEGAL_ADDRESS, "HR5 is not defined")
    assert gw.applied == []


def test_a_command_the_supervisor_refuses_undoes_the_ones_before_it() -> None:
    # HR101 = 15.0 A passes the map (bay-2's nameplate is 16 A) but not the supervisor (its breaker is 13 A).
    gw = FakeGateway()
    before = settings_of(gw.status())
    result = BmsFace(gw).write(100, [100, 150], ORIGIN)
    assert isinstance(result, Refusal) and result.code is ExceptionCode.ILLEGAL_VALUE
    assert "13 A" in result.reason
    assert settings_of(gw.status()) == before
    assert gw.applied == [(SetUnitLimit("bay-1", 10.0), ORIGIN), (SetUnitLimit("bay-1", 20.0), ORIGIN + " (undo)")]


def test_a_refused_first_command_submits_nothing_else() -> None:
    # 50 A is within the installation limit (60 A) but above what the chargers could draw (48 A).
    gw = FakeGateway(snapshot=replace(BASE_STATUS, installation_limit_a=60.0))
    before = settings_of(gw.status())
    result = BmsFace(gw).write(0, [500, 0], ORIGIN)
    assert isinstance(result, Refusal) and result.code is ExceptionCode.ILLEGAL_VALUE
    assert "could draw" in result.reason
    assert settings_of(gw.status()) == before
    assert gw.applied == []


def test_undo_restores_exact_values_not_their_rounded_register_form() -> None:
    gw = FakeGateway(snapshot=replace(BASE_STATUS, units=(replace(BASE_STATUS.units[0], limit_a=12.34),
                                                          BASE_STATUS.units[1])))
    assert BmsFace(gw).write(100, [160, 150], ORIGIN) is not None
    assert gw.status().units[0].limit_a == 12.34


def test_a_failing_supervisor_gives_device_failure_and_undoes() -> None:
    class Broken(FakeGateway):
        def apply(self, command: Command, origin: str) -> None:
            if isinstance(command, BmsHeartbeat):
                raise OSError("disk full")
            super().apply(command, origin)

    gw = Broken()
    before = settings_of(gw.status())
    result = BmsFace(gw).write(0, [200], ORIGIN)
    assert isinstance(result, Refusal) and result.code is ExceptionCode.DEVICE_FAILURE
    assert settings_of(gw.status()) == before


def test_a_write_reads_back_at_once_until_the_next_snapshot_is_published() -> None:
    gw = FakeGateway(publish_on_apply=False)
    face = BmsFace(gw)
    assert face.write(0, [180], ORIGIN) is None
    assert gw.status().network_limit_a == 25.0  # the control loop has not run yet
    assert face.read(Table.HOLDING, 0, 1) == [180]
    gw.publish()
    assert face.read(Table.HOLDING, 0, 1) == [180]
    # A newer snapshot is the truth, whatever it says (here another face changed the limit meanwhile).
    gw.apply(SetNetworkLimit(12.0), "web")
    gw.publish()
    assert face.read(Table.HOLDING, 0, 1) == [120]


def test_unchanged_check_uses_what_was_written_not_the_stale_snapshot() -> None:
    gw = FakeGateway(publish_on_apply=False)
    face = BmsFace(gw)
    assert face.write(0, [180], ORIGIN) is None
    assert face.write(0, [250], ORIGIN) is None  # back to the value the stale snapshot still shows: a real change
    assert gw.commands == [SetNetworkLimit(18.0), BmsHeartbeat(), SetNetworkLimit(25.0), BmsHeartbeat()]


def test_charger_registers_exist_only_for_configured_chargers() -> None:
    face = BmsFace(FakeGateway())
    assert face.read(Table.HOLDING, 100, 2) == [200, 160]
    assert face.read(Table.HOLDING, 100, 3) == Refusal(ExceptionCode.ILLEGAL_ADDRESS, "HR102 is not defined")
    assert isinstance(face.read(Table.INPUT, 1040, 1), Refusal)
    assert isinstance(face.read(Table.INPUT, 19, 1), Refusal)
    assert face.read(Table.INPUT, 1036, 4) == [0, 0, 0, 0]  # reserved offsets 16..19 of charger 1


ADDRESSES = [0, 1, 2, 3, 4, 100, 101]


REGISTER_VALUES = st.one_of(st.integers(0, 2), st.integers(0, 600), st.integers(0, 0xFFFF))


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from([*ADDRESSES, 5, 99, 102]),
       values=st.lists(REGISTER_VALUES, min_size=1, max_size=4),
       installation=st.sampled_from([25.0, 40.0, 60.0]))
def test_any_write_applies_entirely_or_not_at_all(start: int, values: list[int], installation: float) -> None:
    gw = FakeGateway(snapshot=replace(BASE_STATUS, installation_limit_a=installation))
    face = BmsFace(gw)
    before = settings_of(gw.status())
    result = face.write(start, values, ORIGIN)
    after = settings_of(gw.status())
    if result is not None:
        assert after == before
        return
    expected = list(before)
    units = list(before[4])
    for address, raw in enumerate(values, start=start):
        assert address in ADDRESSES
        if address == 0:
            expected[0] = raw / 10
        elif address == 1:
            expected[1] = raw == 1
        elif address == 2:
            expected[2] = float(raw)
        elif address == 3:
            expected[3] = raw / 10
        elif address >= 100:
            units[address - 100] = raw / 10
    expected[4] = tuple(units)
    assert after == tuple(expected)
    assert after[0] <= installation and after[3] <= installation
    heartbeats = sum(1 for c in gw.commands if isinstance(c, BmsHeartbeat))
    assert heartbeats == (1 if {0, 4} & set(range(start, start + len(values))) else 0)


# -- the session blocks (HR2000 + 3·i) ------------------------------------------------------------------------------
NOW_S = int(BASE_STATUS.time_s)
NONE_BLOCK = [0xFFFF, 0xFFFF, 0xFFFF]


def block(departure_s: int | None, energy_raw: int | None) -> list[int]:
    departure = 0xFFFF_FFFF if departure_s is None else departure_s
    return [departure >> 16, departure & 0xFFFF, 0xFFFF if energy_raw is None else energy_raw]


def sessions_of(s: SiteStatus) -> tuple[tuple[float | None, float | None], ...]:
    return tuple((u.departure_s, u.energy_wanted_kwh) for u in s.units)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_a_session_block_write_is_one_session_command_per_charger() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.read(Table.HOLDING, 2000, 6) == NONE_BLOCK * 2  # nothing said yet: "not available"
    assert face.write(2000, block(NOW_S + 3600, 125) + block(None, 400), ORIGIN) is None
    assert gw.applied == [(SetSessionNeed("bay-1", at(NOW_S + 3600), 12.5), ORIGIN),
                          (SetSessionNeed("bay-2", None, 40.0), ORIGIN)]
    assert sessions_of(gw.status()) == ((NOW_S + 3600, 12.5), (None, 40.0))
    assert face.read(Table.HOLDING, 2000, 6) == block(NOW_S + 3600, 125) + block(None, 400)
    assert face.read(Table.HOLDING, 2002, 2) == [125, 0xFFFF]  # any range, across blocks


def test_a_session_value_the_write_does_not_cover_keeps_what_the_session_has() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.write(2000, block(NOW_S + 3600, 125), ORIGIN) is None
    assert face.write(2002, [300], ORIGIN) is None  # the energy alone (function 6)
    assert face.write(2000, block(NOW_S + 7200, None)[:2], ORIGIN) is None  # the departure alone
    assert gw.commands[1:] == [SetSessionNeed("bay-1", at(NOW_S + 3600), 30.0),
                               SetSessionNeed("bay-1", at(NOW_S + 7200), 30.0)]
    assert face.write(2000, block(None, None), ORIGIN) is None  # both "none": cleared
    assert sessions_of(gw.status())[0] == (None, None)


def test_rewriting_what_a_session_has_submits_nothing() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.write(2000, block(NOW_S + 3600, 125) + NONE_BLOCK, ORIGIN) is None
    assert face.write(2000, block(NOW_S + 3600, 125) + NONE_BLOCK, ORIGIN) is None
    assert len(gw.applied) == 1


def test_half_a_departure_is_refused_whole() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    for address, values in [(2000, [0x6B00]), (2001, [0x1234, 100]), (2002, [100, 0x6B00]), (2004, [1, 100])]:
        result = face.write(address, values, ORIGIN)
        assert isinstance(result, Refusal) and result.code is ExceptionCode.ILLEGAL_ADDRESS, address
        assert "two registers" in result.reason
    assert gw.applied == []


def test_a_session_block_of_a_charger_that_does_not_exist_is_exception_2() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.read(Table.HOLDING, 2006, 1) == Refusal(ExceptionCode.ILLEGAL_ADDRESS,
                                                        "HR2006…: there is no charger 2")
    assert isinstance(face.read(Table.HOLDING, 2003, 4), Refusal)
    assert isinstance(face.write(2003, block(None, 10) + block(None, 10), ORIGIN), Refusal)
    assert isinstance(face.read(Table.HOLDING, 1999, 1), Refusal)
    assert gw.applied == []


def test_a_session_the_rule_refuses_undoes_the_charger_before_it() -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    assert face.write(2000, block(NOW_S + 600, 50), ORIGIN) is None
    before = sessions_of(gw.status())
    result = face.write(2000, block(NOW_S + 3600, 125) + block(NOW_S - 60, 100), ORIGIN)  # bay-2's is in the past
    assert isinstance(result, Refusal) and result.code is ExceptionCode.ILLEGAL_VALUE
    assert "future" in result.reason
    assert sessions_of(gw.status()) == before
    assert gw.applied[1:] == [(SetSessionNeed("bay-1", at(NOW_S + 3600), 12.5), ORIGIN),
                              (SetSessionNeed("bay-1", at(NOW_S + 600), 5.0), ORIGIN + " (undo)")]
    assert face.read(Table.HOLDING, 2000, 3) == block(NOW_S + 600, 50)


def test_a_session_write_reads_back_before_the_snapshot_and_a_web_value_reads_after() -> None:
    gw = FakeGateway(publish_on_apply=False)
    face = BmsFace(gw)
    assert face.write(2003, block(NOW_S + 3600, 200), ORIGIN) is None
    assert sessions_of(gw.status())[1] == (None, None)  # not published yet
    assert face.read(Table.HOLDING, 2003, 3) == block(NOW_S + 3600, 200)
    gw.apply(SetSessionNeed("bay-2", at(NOW_S + 1800), 7.25), "web")
    gw.publish()
    assert face.read(Table.HOLDING, 2003, 3) == block(NOW_S + 1800, 72)  # 7.25 kWh reads to the nearest 0.1


SESSION_REGISTERS = st.one_of(st.just(0xFFFF), st.integers(0, 12_000), st.integers(0, 0xFFFF),
                              st.sampled_from([(NOW_S + 3600) >> 16, (NOW_S + 3600) & 0xFFFF]))


@settings(max_examples=300, deadline=None)
@given(start=st.integers(1998, 2007), values=st.lists(SESSION_REGISTERS, min_size=1, max_size=7))
def test_any_session_write_applies_entirely_or_not_at_all(start: int, values: list[int]) -> None:
    gw = FakeGateway()
    face = BmsFace(gw)
    before = sessions_of(gw.status())
    result = face.write(start, values, ORIGIN)
    after = sessions_of(gw.status())
    if result is not None:
        assert after == before
        assert face.read(Table.HOLDING, 2000, 6) == NONE_BLOCK * 2
        return
    registers = NONE_BLOCK * 2
    registers[start - 2000:start - 2000 + len(values)] = values
    assert face.read(Table.HOLDING, 2000, 6) == registers
    for i, (departure_s, energy_kwh) in enumerate(after):
        raw = (registers[3 * i] << 16) | registers[3 * i + 1]
        assert departure_s == (None if raw == 0xFFFF_FFFF else raw)
        assert NOW_S < raw <= NOW_S + 7 * 86_400 or departure_s is None
        assert energy_kwh == (None if registers[3 * i + 2] == 0xFFFF else registers[3 * i + 2] / 10)
