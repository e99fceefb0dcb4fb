"""Every shipped profile loads, validates, is found by name, and its read plan decodes what a device would hold."""

import importlib.resources
import math

import pytest

from drivers.codec import DataType, InvalidReading
from drivers.model import Iec61851State
from drivers.profile import (
    ChargerControl,
    ChargerPoints,
    ChargerProfile,
    InitWrite,
    MeterPoints,
    MeterProfile,
    Point,
    ProfileMeta,
    ProfileRegistry,
    Quirks,
    StateRule,
    Table,
    Trust,
    Watchdog,
    parse_profile,
)
from drivers.strict_yaml import load_yaml

REGISTRY = ProfileRegistry.shipped()
REQUIRED_CHARGERS = {
    "heidelberg-energy-control", "abb-terra-ac", "alfen-eve", "keba-p40", "vestel-evc04", "bender-cc612-cc613",
    "phoenix-charx-sec", "phoenix-ev-cc-ac1-m3-eth", "schneider-evlink-pro-ac", "webasto-next", "powershare-sim",
}
REQUIRED_METERS = {"eastron-sdm630", "carlo-gavazzi-em340", "janitza-umg604", "powershare-sim-meter"}
CHARGERS = REGISTRY.names("charger")
ALL = REGISTRY.names()


def test_registry_holds_the_required_profiles() -> None:
    assert set(CHARGERS) >= REQUIRED_CHARGERS
    assert set(REGISTRY.names("meter")) >= REQUIRED_METERS
    assert REGISTRY.nameplate_a("heidelberg-energy-control") == 16
    with pytest.raises(KeyError):
        REGISTRY.nameplate_a("eastron-sdm630")
    with pytest.raises(KeyError):
        REGISTRY.nameplate_a("no-such-charger")


@pytest.mark.parametrize("name", CHARGERS)
def test_charger_capabilities_are_consistent(name: str) -> None:
    profile = REGISTRY.charger(name)
    caps = profile.capabilities()
    assert caps.min_current_a <= profile.max_setpoint_a <= caps.max_current_a
    assert 0 < caps.resolution_a <= 1
    for current in (profile.control.min_current_a, profile.max_setpoint_a):
        registers = profile.encode("setpoint", current)
        assert profile.decode("setpoint", registers) == pytest.approx(current)
    if caps.has_failsafe:
        assert profile.watchdog.keep_alive.value != "none"
        assert profile.points.failsafe_timeout is not None or profile.watchdog.fixed_timeout_s is not None


@pytest.mark.parametrize("name", CHARGERS)
def test_charger_state_can_tell_idle_plugged_and_charging_apart(name: str) -> None:
    profile = REGISTRY.charger(name)
    reachable: set[str] = set()
    if profile.points.state is not None:
        assert profile.points.state.enum is not None
        reachable = set(profile.points.state.enum.values())
    else:
        reachable = {rule.state.value for rule in profile.state_rules}
    assert {"A", "B", "C"} <= reachable


@pytest.mark.parametrize("name", ALL)
def test_uncertain_facts_are_explained(name: str) -> None:
    profile = REGISTRY.get(name)
    uncertain = [n for n, p in profile.all_points().items() if p.trust is not Trust.SURE]
    if uncertain or profile.trust is not Trust.SURE:
        assert len(profile.notes) > 40, f"{name}: points {uncertain} are uncertain but the profile says nothing"


def _sample(profile: ChargerProfile | MeterProfile, name: str, point: Point) -> object:
    """A value this point can hold, chosen inside its valid range."""
    fmt = profile.format_of(name)
    if point.type is DataType.BOOL:
        return True
    if point.enum:
        return sorted(point.enum.values())[-1]
    if point.type.is_text:
        return "ABC"[: 2 * point.register_count]
    if point.mask is not None:
        return 1
    low = fmt.valid_min if fmt.valid_min is not None else 0.0
    high = fmt.valid_max if fmt.valid_max is not None else low + 1000.0
    value = low + min((high - low) / 3, 23.4)
    step = fmt.step or 1.0
    return round(value / step) * step


@pytest.mark.parametrize("name", ALL)
def test_read_plan_decodes_every_poll_point_from_a_register_image(name: str) -> None:
    profile = REGISTRY.get(name)
    image: dict[tuple[int | None, Table, int], int] = {}
    expected: dict[str, object] = {}
    for point_name in profile.poll_points():
        point = profile.point(point_name)
        value = _sample(profile, point_name, point)
        for i, register in enumerate(profile.encode(point_name, value)):  # type: ignore[arg-type]
            key = (point.device_id, point.table, point.address + i)
            image[key] = image.get(key, 0) | register
        expected[point_name] = value
    decoded: dict[str, object] = {}
    for block in profile.read_plan():
        assert block.count <= profile.quirks.max_registers_per_read
        values = [image.get((block.device_id, block.table, block.start + i), 0) for i in range(block.count)]
        decoded.update(profile.decode_block(block, values))
    assert set(decoded) == set(expected)
    for point_name, value in expected.items():
        got = decoded[point_name]
        assert not isinstance(got, InvalidReading), f"{point_name}: {got}"
        if isinstance(value, float):
            assert isinstance(got, int | float) and math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-6), point_name
        else:
            assert got == value, point_name


@pytest.mark.parametrize("name", CHARGERS)
def test_all_ones_registers_never_read_as_a_believable_current(name: str) -> None:
    """0xFFFF... is the classic "not available" pattern: it must never become 6553.5 A or similar."""
    profile = REGISTRY.charger(name)
    for phase in ("current_l1", "current_l2", "current_l3"):
        if profile.has(phase):
            ones = [0xFFFF] * profile.point(phase).register_count
            assert isinstance(profile.decode(phase, ones), InvalidReading), phase


def test_state_rules_of_shipped_profiles_follow_the_research() -> None:
    abb = REGISTRY.charger("abb-terra-ac")
    assert abb.derive_state({"charging_state": 4, "vehicle_connected": 1}) is Iec61851State.C
    assert abb.derive_state({"charging_state": 5, "vehicle_connected": 1}) is Iec61851State.B
    assert abb.derive_state({"charging_state": 5, "vehicle_connected": 0}) is Iec61851State.A
    assert isinstance(abb.derive_state({"charging_state": 9, "vehicle_connected": 0}), InvalidReading)
    # 0x400C on the wire: 00 00 84 00 -> state 4 with bit 7 set ("charging below the commanded value")
    assert abb.decode("charging_state", [0x0000, 0x8400]) == 4
    keba = REGISTRY.charger("keba-p40")
    assert keba.derive_state({"charging_state": 3, "vehicle_connected": keba.decode("vehicle_connected", [0, 7])}) \
        is Iec61851State.C
    assert keba.derive_state({"charging_state": 2, "vehicle_connected": keba.decode("vehicle_connected", [0, 1])}) \
        is Iec61851State.A
    vestel = REGISTRY.charger("vestel-evc04")
    assert vestel.derive_state({"chargepoint_state": 2, "cable_state": 3, "charging": 1}) is Iec61851State.C
    assert vestel.derive_state({"chargepoint_state": 1, "cable_state": 2, "charging": 0}) is Iec61851State.B
    charx = REGISTRY.charger("phoenix-charx-sec")
    assert charx.decode("state", [0x4332]) == "C"  # "C2"
    alfen = REGISTRY.charger("alfen-eve")
    assert alfen.decode("state", [0x4232, 0, 0, 0, 0]) == "B"  # "B2"


def test_template_is_a_valid_profile_and_documents_every_key() -> None:
    text = (importlib.resources.files("profiles") / "TEMPLATE.yaml").read_text(encoding="utf-8")
    profile = parse_profile(load_yaml(text), "TEMPLATE.yaml")
    assert isinstance(profile, ChargerProfile)
    models: list[type] = [Point, Quirks, InitWrite, ProfileMeta, ChargerProfile, MeterProfile, ChargerPoints,
                          MeterPoints, StateRule, ChargerControl, Watchdog]
    keys = {key for model in models for key in model.model_fields}  # type: ignore[attr-defined]
    missing = sorted(key for key in keys if f"{key}" not in text)
    assert missing == []
    assert "template-charger" not in REGISTRY
