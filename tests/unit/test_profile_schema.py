"""The profile schema: strict keys, cross-field rules with messages naming file and key, read plans, state rules."""

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import InvalidReading
from drivers.errors import ProfileError
from drivers.model import Iec61851State
from drivers.profile import (
    ChargerProfile,
    KeepAlive,
    Point,
    ProfileIssues,
    ProfileRegistry,
    Table,
    load_profile,
    parse_profile,
    plan_reads,
)


def charger(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "test-charger", "kind": "charger", "manufacturer": "Test", "models": ["T1"], "transports": ["tcp"],
        "nameplate_a": 32,
        "points": {
            "state": {"table": "input", "address": 0, "enum": {0: "A", 1: "B", 2: "C", 9: "F"}},
            "current_l1": {"table": "input", "address": 1, "scale": 0.1},
            "current_l2": {"table": "input", "address": 2, "scale": 0.1},
            "current_l3": {"table": "input", "address": 3, "scale": 0.1},
            "energy": {"table": "input", "address": 4, "type": "u32", "unit": "Wh"},
            "setpoint": {"table": "holding", "address": 100, "access": "rw", "write_fc": 6, "scale": 0.1},
            "failsafe_current": {"table": "holding", "address": 101, "access": "rw", "write_fc": 6},
            "failsafe_timeout": {"table": "holding", "address": 102, "access": "rw", "write_fc": 6},
        },
        "watchdog": {"keep_alive": "traffic"},
    }
    data.update(extra)
    return data


def meter(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "test-meter", "kind": "meter", "manufacturer": "Test", "models": ["M1"], "transports": ["rtu"],
        "points": {f"current_l{i}": {"table": "input", "address": 2 * i, "type": "f32"} for i in (1, 2, 3)},
    }
    data.update(extra)
    return data


def issues_of(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileIssues) as err:
        parse_profile(data, "bad.yaml")
    return str(err.value)


def test_a_valid_charger_profile_parses_and_reports_its_capabilities() -> None:
    profile = parse_profile(charger(), "ok.yaml")
    assert isinstance(profile, ChargerProfile)
    caps = profile.capabilities()
    assert caps.max_current_a == 32 and caps.resolution_a == pytest.approx(0.1)
    assert caps.has_failsafe and caps.can_read_setpoint and not caps.can_disable
    assert "energy" in caps.extras


def test_unknown_keys_are_rejected_with_their_path() -> None:
    data = charger()
    data["points"]["setpoint"]["wrte_fc"] = 6
    data["points"]["curent_l1"] = {"table": "input", "address": 9}
    text = issues_of(data)
    assert "bad.yaml: points.setpoint.wrte_fc: unknown key" in text
    assert "bad.yaml: points.curent_l1: unknown key" in text


def test_register_count_must_match_the_type() -> None:
    data = charger()
    data["points"]["energy"]["count"] = 1
    assert "bad.yaml: points.energy: a u32 occupies 2 register(s), not 1" in issues_of(data)


def test_overlapping_points_are_refused_unless_declared() -> None:
    data = charger()
    data["points"]["energy"]["address"] = 3
    assert "bad.yaml: points.energy.address: input 3 overlaps 'current_l3'" in issues_of(data)
    data["points"]["energy"]["overlaps"] = ["current_l3"]
    parse_profile(data, "ok.yaml")


def test_writable_points_need_a_matching_function_code() -> None:
    data = charger()
    del data["points"]["setpoint"]["write_fc"]
    assert "points.setpoint: a writable point needs write_fc" in issues_of(data)
    data = charger()
    data["points"]["energy"] = {"table": "holding", "address": 4, "type": "u32", "access": "rw", "write_fc": 6}
    assert "points.energy: write_fc 6 writes one register" in issues_of(data)
    data = charger()
    data["points"]["current_l1"]["access"] = "rw"
    data["points"]["current_l1"]["write_fc"] = 16
    assert "points.current_l1: input points are read-only" in issues_of(data)


def test_a_charger_needs_state_and_setpoint() -> None:
    data = charger()
    del data["points"]["state"], data["points"]["setpoint"]
    text = issues_of(data)
    assert "bad.yaml: points.setpoint: a charger profile needs a setpoint point" in text
    assert "bad.yaml: points.state: a charger profile needs a state point or state_rules" in text


def test_state_enum_must_name_iec_states() -> None:
    data = charger()
    data["points"]["state"]["enum"][5] = "charging"
    assert "points.state.enum.5: 'charging' is not an IEC 61851 state" in issues_of(data)


def test_role_units_and_setpoint_range_are_checked() -> None:
    data = charger()
    data["points"]["energy"]["unit"] = "kWh"
    data["points"]["setpoint"]["type"] = "u16"
    data["points"]["setpoint"]["scale"] = 0.001  # mA in a u16: 65.5 A max, nameplate 32 A fits
    data["nameplate_a"] = 80
    text = issues_of(data)
    assert "points.energy.unit: must be 'Wh'" in text
    assert "points.setpoint: cannot command 80 A" in text


def test_watchdog_rules() -> None:
    data = charger(watchdog={"keep_alive": "heartbeat"})
    assert "watchdog.keep_alive: heartbeat keep-alive needs a heartbeat point" in issues_of(data)
    assert "watchdog.keep_alive: a charger with a fail-safe current has a watchdog" in issues_of(charger(watchdog={}))


def test_meter_rules_and_wrong_kind() -> None:
    profile = parse_profile(meter(), "m.yaml")
    assert profile.kind == "meter"
    data = meter()
    del data["points"]["current_l1"]
    assert "points.current_l1: a meter profile needs at least the L1 current" in issues_of(data)
    assert "kind: must be charger or meter" in issues_of(meter(kind="inverter"))
    assert "bad.yaml: nameplate_a: unknown key" in issues_of(meter(nameplate_a=3))


def test_read_plan_merges_adjacent_points_within_the_device_limit() -> None:
    profile = parse_profile(charger(), "ok.yaml")
    blocks = {(b.table, b.start, b.count) for b in profile.read_plan()}
    assert blocks == {(Table.INPUT, 0, 6), (Table.HOLDING, 100, 1)}
    limited = parse_profile(charger(quirks={"max_registers_per_read": 2}), "ok.yaml")
    assert [(b.start, b.count) for b in limited.read_plan() if b.table is Table.INPUT] == [(0, 2), (2, 2), (4, 2)]


def test_every_polled_point_fits_one_read() -> None:
    data = charger(quirks={"max_registers_per_read": 1}, state_rules=[{"when": {"cable": [1]}, "state": "B"}],
                   aux={"cable": {"table": "input", "address": 20, "type": "u32"}})
    del data["points"]["state"]
    text = issues_of(data)
    assert "aux.cable: 2 registers exceed quirks.max_registers_per_read (1)" in text
    assert "points.energy: 2 registers exceed" in text


def _points(starts: list[int]) -> dict[str, Point]:
    return {f"p{i}": Point(table=Table.HOLDING, address=a, type="u32") for i, a in enumerate(sorted(set(starts)))}  # type: ignore[arg-type]


@given(st.lists(st.integers(0, 400).map(lambda a: a * 2), min_size=1, max_size=40), st.integers(2, 125),
       st.integers(0, 10))
def test_read_plan_covers_every_point_once_within_limits(starts: list[int], limit: int, gap: int) -> None:
    points = _points(starts)
    blocks = plan_reads(points, limit, gap)
    carried = [n for b in blocks for n in b.points]
    assert sorted(carried) == sorted(points)
    for block in blocks:
        assert block.count <= limit
        for name in block.points:
            assert block.start <= points[name].address and points[name].end <= block.start + block.count
    assert all(a.start + a.count <= b.start for a, b in itertools.pairwise(blocks))


def test_read_plan_bridges_gaps_only_when_allowed() -> None:
    points = {"a": Point(table=Table.INPUT, address=0), "b": Point(table=Table.INPUT, address=3)}
    assert [(b.start, b.count) for b in plan_reads(points, 125, 0)] == [(0, 1), (3, 1)]
    assert [(b.start, b.count) for b in plan_reads(points, 125, 2)] == [(0, 4)]


def test_decode_block_and_plausible_default_ranges() -> None:
    profile = parse_profile(charger(), "ok.yaml")
    block = next(b for b in profile.read_plan() if b.table is Table.INPUT)
    values = profile.decode_block(block, [2, 160, 0xFFFF, 0, 0, 1234])
    assert values["state"] == "C" and values["current_l1"] == pytest.approx(16.0)
    assert isinstance(values["current_l2"], InvalidReading)
    assert values["energy"] == 1234
    assert profile.derive_state(values) is Iec61851State.C


def test_state_rules_derive_the_state_from_two_points() -> None:
    data = charger(state_rules=[
        {"when": {"charging": [1]}, "state": "C"},
        {"when": {"cable": ["vehicle", "locked"]}, "state": "B"},
        {"state": "A"},
    ], aux={
        "cable": {"table": "input", "address": 10, "enum": {0: "none", 1: "cable", 2: "vehicle", 3: "locked"}},
        "charging": {"table": "input", "address": 11},
    })
    del data["points"]["state"]
    profile = parse_profile(data, "ok.yaml")
    assert isinstance(profile, ChargerProfile)
    assert set(profile.state_points()) == {"charging", "cable"}
    assert set(profile.state_points()) <= set(profile.poll_points())
    assert profile.derive_state({"charging": 1, "cable": "locked"}) is Iec61851State.C
    assert profile.derive_state({"charging": 0, "cable": "vehicle"}) is Iec61851State.B
    assert profile.derive_state({"charging": 0, "cable": "none"}) is Iec61851State.A
    assert isinstance(profile.derive_state({"charging": InvalidReading("x", ()), "cable": "none"}), InvalidReading)
    data["state_rules"][0]["when"] = {"charing": [1]}
    assert "state_rules[0].when.charing: no point named 'charing'" in issues_of(data)


def test_watchdog_period() -> None:
    profile = parse_profile(charger(watchdog={"keep_alive": "traffic", "interval_s": 5}), "ok.yaml")
    assert isinstance(profile, ChargerProfile)
    assert profile.watchdog.keep_alive is KeepAlive.TRAFFIC
    assert profile.watchdog.period_s(60) == 5
    assert profile.watchdog.period_s(12) == 3


def test_files_and_registry(tmp_path: Path) -> None:
    import yaml
    (tmp_path / "test-charger.yaml").write_text(yaml.safe_dump(charger()))
    (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(meter()))
    with pytest.raises(ProfileError, match=r"wrong-name\.yaml: name: 'test-meter' must match the file name"):
        load_profile(tmp_path / "wrong-name.yaml")
    (tmp_path / "wrong-name.yaml").unlink()
    registry = ProfileRegistry.load([tmp_path], include_shipped=False)
    assert registry.names() == ("test-charger",)
    assert registry.nameplate_a("test-charger") == 32
    with pytest.raises(KeyError):
        registry.nameplate_a("nope")
    sub = tmp_path / "again"
    sub.mkdir()
    (sub / "test-charger.yaml").write_text(yaml.safe_dump(charger()))
    with pytest.raises(ProfileError, match="'test-charger' is already defined in"):
        ProfileRegistry.load([tmp_path], include_shipped=False)
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "test-meter.yaml").write_text("name: a\nname: b\n")
    with pytest.raises(ProfileError, match="duplicate key 'name'"):
        load_profile(dup / "test-meter.yaml")


def test_profiles_are_frozen() -> None:
    profile = parse_profile(charger(), "ok.yaml")
    with pytest.raises(Exception, match="frozen"):
        profile.nameplate_a = 64  # type: ignore[misc]
    assert copy.deepcopy(profile) == profile
