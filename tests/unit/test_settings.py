"""Commissioning settings: validated like the site file, persisted atomically, never lost, never half-applied."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.runtime.commands import (
    AddFollower,
    CommandRejected,
    RemoveFollower,
    SetEnabled,
    SetNetworkLimit,
    SetUnitLimit,
)
from gateway.site.config import ChargerConfig, parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore, write_atomically

NAMEPLATES = {"sim": 32.0}


def site(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {
        "installation_limit_a": 100, "network_limit_a": 60,
        "chargers": [{"id": f"cp{i}", "profile": "sim", "transport": {"type": "tcp", "host": "h", "port": 500 + i}}
                     for i in range(3)]}
    data.update(extra)
    return data


def settings(tmp_path: Path, **extra: object) -> SiteSettings:
    config, _ = parse_site(site(**extra), "site.yaml", NAMEPLATES.__getitem__)
    return SiteSettings(config, NAMEPLATES.__getitem__, JsonStore(tmp_path / "settings.json"))


def test_changes_survive_a_restart(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s.apply(SetNetworkLimit(45))
    s.apply(SetEnabled(True))
    s.apply(SetUnitLimit("cp1", 10))
    s.apply(AddFollower(ChargerConfig.model_validate(
        {"id": "cp9", "profile": "sim", "transport": {"type": "tcp", "host": "h"}})))
    s.apply(RemoveFollower("cp0"))
    again = settings(tmp_path)
    assert again.config.network_limit_a == 45 and again.config.enabled
    assert again.unit_limits_a == {"cp1": 10}
    assert [c.id for c in again.config.chargers] == ["cp1", "cp2", "cp9"]


@pytest.mark.parametrize("command", [
    SetNetworkLimit(101), SetNetworkLimit(-1), SetNetworkLimit(float("nan")), SetUnitLimit("cp1", 33),
    SetUnitLimit("nope", 10), RemoveFollower("nope"),
    AddFollower(ChargerConfig.model_validate(
        {"id": "cp1", "profile": "sim", "transport": {"type": "tcp", "host": "h"}})),
])
def test_bad_commands_are_refused_and_change_nothing(tmp_path: Path, command: object) -> None:
    s = settings(tmp_path)
    before = (s.config, s.unit_limits_a)
    with pytest.raises(CommandRejected):
        s.apply(command)  # type: ignore[arg-type]
    assert (s.config, s.unit_limits_a) == before
    assert not (tmp_path / "settings.json").exists()


def test_network_limit_above_what_chargers_can_draw_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandRejected, match="busiest phase"):
        settings(tmp_path).apply(SetNetworkLimit(97))


def test_the_network_limit_rule_alone_is_the_site_file_rule(tmp_path: Path) -> None:
    """What the BMS's limit source checks: the site file's network limit rule, without revalidating the site."""
    s = settings(tmp_path)
    s.check_network_limit(96)
    for limit, words in ((97, "busiest phase"), (101, "installation limit"), (-1, "between 0 A"),
                         (float("nan"), "between 0 A")):
        with pytest.raises(CommandRejected, match=words):
            s.check_network_limit(limit)
    s.apply(RemoveFollower("cp0"))  # the chargers' sum follows the configuration in force
    with pytest.raises(CommandRejected, match=r"busiest phase \(64 A\)"):
        s.check_network_limit(65)
    assert s.config.network_limit_a == 60


def test_an_edited_site_file_wins_for_the_keys_it_changed(tmp_path: Path) -> None:
    settings(tmp_path).apply(SetNetworkLimit(45))
    settings(tmp_path).apply(SetEnabled(True))
    edited = settings(tmp_path, network_limit_a=50)
    assert edited.config.network_limit_a == 50
    assert edited.config.enabled is True


def test_unreadable_state_is_moved_aside_not_lost(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text("{ truncated")
    s = settings(tmp_path)
    assert s.config.network_limit_a == 60
    assert (tmp_path / "settings.json.corrupt-1").read_text() == "{ truncated"


def test_unwritable_state_refuses_the_command(tmp_path: Path) -> None:
    s = settings(tmp_path)
    (tmp_path / "settings.json").mkdir()  # even root cannot rename a file over a directory
    with pytest.raises(CommandRejected, match="could not be saved"):
        s.apply(SetNetworkLimit(40))
    assert s.config.network_limit_a == 60


def test_a_writer_killed_mid_way_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomically(path, json.dumps({"n": 0}).encode())
    script = (
        "import os, sys, json\n"
        "from pathlib import Path\n"
        "import gateway.site.store as s\n"
        "real = os.replace\n"
        "def die(*a): os._exit(9)\n"
        "s.os.replace = die\n"
        f"s.write_atomically(Path({str(path)!r}), json.dumps({{'n': 1}}).encode())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == 9
    assert json.loads(path.read_text()) == {"n": 0}
    assert JsonStore(path).load() == {"n": 0}
