"""Commissioning at run time: every key the installer sets is validated like the site file, applies live or waits
for a restart as documented, survives a restart, and an edited site file wins for exactly the keys it changed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime.commands import (
    AddFollower,
    CommandRejected,
    RemoveCircuit,
    RemoveFollower,
    SetBms,
    SetCircuit,
    SetInstallationLimit,
    SetMeter,
    SetNetworkLimit,
    SetOcppUpstream,
    SetUnitWiring,
)
from gateway.site.config import BmsConfig, ChargerConfig, CircuitConfig, MeterConfig, OcppConfig, parse_site
from gateway.site.overlay import Overlay, compose
from gateway.site.settings import KEY_FILE, SiteSettings
from gateway.site.store import JsonStore

NAMEPLATES = {"sim": 32.0}
KEY = "0123456789abcdef0123"


def site(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "installation_limit_a": 100, "network_limit_a": 60,
        "circuits": [{"id": "east", "limit_a": 63}, {"id": "east-1", "parent": "east", "limit_a": 40}],
        "chargers": [{"id": f"cp{i}", "profile": "sim", "circuit": "east-1" if i == 0 else "site",
                      "transport": {"type": "tcp", "host": "h", "port": 500 + i}} for i in range(3)]}
    data.update(extra)
    return data


def settings(tmp_path: Path, **extra: Any) -> SiteSettings:
    config, _ = parse_site(site(**extra), "site.yaml", NAMEPLATES.__getitem__)
    return SiteSettings(config, NAMEPLATES.__getitem__, JsonStore(tmp_path / "settings.json"))


def meter(**extra: Any) -> MeterConfig:
    return MeterConfig.model_validate({"profile": "m", "transport": {"type": "tcp", "host": "meter", "unit": 3},
                                       "limit_a": 80, "fallback_limit_a": 20, **extra})


def upstream(**extra: Any) -> OcppConfig:
    return OcppConfig.model_validate({"url": "ws://csms.example/ocpp", "charge_point_id": "site-7", **extra})


def snapshot(s: SiteSettings, tmp_path: Path) -> tuple[Any, ...]:
    path = tmp_path / "settings.json"
    return s.config, s.saved, s.restart_needed, path.read_bytes() if path.exists() else None


def test_every_commissioning_key_survives_a_restart(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetInstallationLimit(80))
    s.apply(SetCircuit(None, CircuitConfig(id="west", limit_a=32)))
    s.apply(SetCircuit("east-1", CircuitConfig(id="east-1", parent="east", limit_a=25)))
    s.apply(SetUnitWiring("cp1", 16, 3, "L2L3L1", "west"))
    s.apply(AddFollower(ChargerConfig.model_validate(
        {"id": "bay-9", "profile": "sim", "transport": {"type": "tcp", "host": "h"}})))
    s.apply(SetUnitWiring("bay-9", 20, 1, "L3", "west"))
    s.apply(SetMeter(meter()))
    s.apply(SetBms(BmsConfig(port=1502, unit_id=9, read_only=True)))
    s.apply(SetOcppUpstream(upstream()))
    again = settings(tmp_path)
    assert again.config == s.saved and again.saved == s.saved
    config = again.config
    assert config.installation_limit_a == 80
    assert [(c.id, c.parent, c.limit_a) for c in config.circuits] == [
        ("east", "site", 63), ("east-1", "east", 25), ("west", "site", 32)]
    cp1, bay9 = config.chargers[1], config.chargers[3]
    assert (cp1.breaker_limit_a, cp1.phase_rotation, cp1.circuit) == (16, "L2L3L1", "west")
    assert (bay9.id, bay9.breaker_limit_a, bay9.phases, bay9.phase_rotation) == ("bay-9", 20, 1, "L3")
    assert config.meter == meter() and config.bms is not None and config.bms.port == 1502
    assert config.ocpp is not None and config.ocpp.charge_point_id == "site-7"
    assert again.restart_needed == () and again.notes == ()


def test_the_controllers_inputs_apply_at_once_the_wiring_waits_for_a_restart(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetInstallationLimit(90))
    s.apply(SetUnitWiring("cp2", 10, 3, "L3L1L2", "east"))
    assert s.config.installation_limit_a == 90 and s.config.chargers[2].breaker_limit_a == 10
    s.apply(SetBms(BmsConfig(port=1502)))
    s.apply(SetOcppUpstream(upstream()))
    s.apply(SetMeter(meter()))
    assert s.config.bms is None and s.config.ocpp is None and s.config.meter is None
    assert s.restart_needed == ("meter", "bms", "ocpp")
    assert settings(tmp_path).restart_needed == ()


def test_a_meters_limits_apply_at_once_another_device_at_the_restart(tmp_path: Path) -> None:
    s = settings(tmp_path, meter=meter().model_dump(mode="json"))
    s.apply(SetMeter(meter(margin_a=5, fallback_limit_a=10, circuit="east")))
    assert s.config.meter is not None and s.config.meter.margin_a == 5 and s.config.meter.circuit == "east"
    assert s.restart_needed == ()
    s.apply(SetMeter(meter(transport={"type": "tcp", "host": "other-meter", "unit": 3})))
    assert s.config.meter is not None and s.config.meter.transport.host == "meter"  # type: ignore[union-attr]
    assert s.restart_needed == ("meter",)


@pytest.mark.parametrize(("command", "field", "words"), [
    (SetInstallationLimit(50), "network_limit_a", "above the installation limit"),
    (SetInstallationLimit(-1), "limit_a", "between 0 A and"),
    (SetCircuit(None, CircuitConfig(id="east", limit_a=10)), "id", "already on this site"),
    (SetCircuit(None, CircuitConfig(id="x", parent="nowhere", limit_a=10)), "circuits[2].parent", "unknown circuit"),
    (SetCircuit("east", CircuitConfig(id="east", parent="east-1", limit_a=63)), "circuits[0].parent", "loop"),
    (SetCircuit("nope", CircuitConfig(id="nope", limit_a=10)), "circuit_id", "no circuit"),
    (RemoveCircuit("east"), "circuit_id", "move them to another circuit first"),
    (RemoveCircuit("east-1"), "circuit_id", "unit cp0"),
    (SetUnitWiring("cp1", 40, 3, "L1L2L3", "site"), "chargers[1].breaker_limit_a", "above the unit's nameplate"),
    (SetUnitWiring("cp1", 5, 3, "L1L2L3", "site"), "chargers[1].breaker_limit_a", "below 6 A"),
    (SetUnitWiring("cp1", None, 3, "L1L1L2", "site"), "chargers[1].phase_rotation", "permutation"),
    (SetUnitWiring("cp1", None, 3, "L2", "site"), "chargers[1].phase_rotation", "all three phases"),
    (SetUnitWiring("cp1", None, 3, "L1L2L3", "attic"), "chargers[1].circuit", "unknown circuit"),
    (SetUnitWiring("nope", None, 3, "L1L2L3", "site"), "charger_id", "no charger"),
    (SetMeter(meter(circuit="attic")), "meter.circuit", "unknown circuit"),
    (SetMeter(meter(fallback_limit_a=90)), "meter.fallback_limit_a", "above the metered node's limit"),
])
def test_a_refused_change_names_the_setting_and_changes_nothing(tmp_path: Path, command: Any, field: str,
                                                                words: str) -> None:
    s = settings(tmp_path)
    s.apply(SetNetworkLimit(55))  # something on disk to compare
    before = snapshot(s, tmp_path)
    with pytest.raises(CommandRejected) as refused:
        s.apply(command)
    assert refused.value.field == field and words in str(refused.value), str(refused.value)
    assert "_a" not in str(refused.value).split(":")[0], "the setting is named in words, not by its key"
    assert snapshot(s, tmp_path) == before


def test_a_renamed_circuit_takes_its_units_sub_circuits_and_meter_along(tmp_path: Path) -> None:
    metered = meter(circuit="east").model_dump(mode="json")
    s = settings(tmp_path, meter=metered)
    s.apply(SetCircuit("east", CircuitConfig(id="hall-a", limit_a=50)))
    config = settings(tmp_path, meter=metered).config
    assert [(c.id, c.parent) for c in config.circuits] == [("east-1", "hall-a"), ("hall-a", "site")]
    assert config.meter is not None and config.meter.circuit == "hall-a"
    assert s.config.meter is not None and s.config.meter.circuit == "hall-a", "the meter in force follows the name"
    s.apply(SetCircuit("east-1", CircuitConfig(id="bay", parent="hall-a", limit_a=40)))
    assert settings(tmp_path, meter=metered).config.chargers[0].circuit == "bay"


def test_an_edited_site_file_wins_for_exactly_the_keys_it_changed(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetCircuit("east", CircuitConfig(id="east", limit_a=50)))
    s.apply(SetCircuit(None, CircuitConfig(id="west", limit_a=32)))
    s.apply(SetUnitWiring("cp1", 16, 3, "L2L3L1", "site"))
    s.apply(SetInstallationLimit(90))
    edited = site()
    edited["circuits"][0]["limit_a"] = 70
    edited["chargers"][1]["phase_rotation"] = "L3L1L2"
    edited["installation_limit_a"] = 90  # now says what the page set: absorbed, no note
    config, _ = parse_site(edited, "site.yaml", NAMEPLATES.__getitem__)
    again = SiteSettings(config, NAMEPLATES.__getitem__, JsonStore(tmp_path / "settings.json"))
    assert [(c.id, c.limit_a) for c in again.config.circuits] == [("east", 70), ("east-1", 40), ("west", 32)]
    cp1 = again.config.chargers[1]
    assert (cp1.breaker_limit_a, cp1.phase_rotation) == (16, "L3L1L2")
    assert len(again.notes) == 2 and all("site file changed" in n for n in again.notes), again.notes


def test_settings_that_no_longer_fit_the_file_are_set_aside_not_lost(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetCircuit(None, CircuitConfig(id="west", parent="east", limit_a=32)))
    saved = (tmp_path / "settings.json").read_bytes()
    edited = site(circuits=[{"id": "east-1", "limit_a": 40}])  # the file drops "east", the page's west hangs on it
    config, _ = parse_site(edited, "site.yaml", NAMEPLATES.__getitem__)
    again = SiteSettings(config, NAMEPLATES.__getitem__, JsonStore(tmp_path / "settings.json"))
    assert again.config == config
    assert "do not fit the site file" in again.notes[-1] and "settings.json.unused-1" in again.notes[-1]
    assert (tmp_path / "settings.json.unused-1").read_bytes() == saved


def test_a_change_that_the_gateway_in_force_could_not_run_waits_for_the_restart_first(tmp_path: Path) -> None:
    s = settings(tmp_path, meter=meter(circuit="east-1").model_dump(mode="json"))
    s.apply(SetMeter(meter(circuit="site", transport={"type": "tcp", "host": "new-meter", "unit": 1})))
    s.apply(SetUnitWiring("cp0", None, 3, "L1L2L3", "east"))
    with pytest.raises(CommandRejected, match=r"Restart the gateway first.*Site meter"):
        s.apply(RemoveCircuit("east-1"))  # the meter in force still measures it


def test_the_central_systems_key_set_here_is_a_private_file_never_in_the_settings(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetOcppUpstream(upstream(security_profile=1, password=KEY)))
    key_file = tmp_path / KEY_FILE
    assert key_file.read_text().strip() == KEY
    assert os.stat(key_file).st_mode & 0o077 == 0, "readable by the gateway's user only"
    assert KEY not in (tmp_path / "settings.json").read_text()
    saved = settings(tmp_path).config.ocpp
    assert saved is not None and saved.password is None and saved.password_file == key_file
    s.apply(SetOcppUpstream(None))
    assert not key_file.exists(), "the key of a central system no longer used does not linger"


def test_a_follower_removed_drops_its_wiring(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetUnitWiring("cp2", 16, 3, "L2L3L1", "site"))
    s.apply(RemoveFollower("cp2"))
    overlay = Overlay.from_json(json.loads((tmp_path / "settings.json").read_text()))
    assert [k for k in overlay.values if k.startswith("chargers.cp2")] == []


def test_compose_is_the_same_in_memory_and_after_a_reload(tmp_path: Path) -> None:
    """The order of new circuits does not depend on how the overlay was stored (``run`` starts identically)."""
    s = settings(tmp_path)
    for name in ("zeta", "alpha", "mid"):
        s.apply(SetCircuit(None, CircuitConfig(id=name, limit_a=16)))
    config, _ = parse_site(site(), "site.yaml", NAMEPLATES.__getitem__)
    document = json.loads((tmp_path / "settings.json").read_text())
    assert compose(config, Overlay.from_json(document)).data["circuits"] == \
        s.saved.model_dump(mode="json")["circuits"]
    assert settings(tmp_path).config == s.config


def test_the_key_file_is_named_by_an_absolute_path_whatever_the_state_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--state-dir state`` is relative to where the gateway started; the OCPP client reads the key file relative to
    its own working directory and an exported site file is read from anywhere."""
    monkeypatch.chdir(tmp_path)
    config, _ = parse_site(site(), "site.yaml", NAMEPLATES.__getitem__)
    s = SiteSettings(config, NAMEPLATES.__getitem__, JsonStore(Path("state") / "settings.json"))
    s.apply(SetOcppUpstream(upstream(security_profile=1, password=KEY)))
    assert s.saved.ocpp is not None and s.saved.ocpp.password_file == tmp_path / "state" / KEY_FILE
