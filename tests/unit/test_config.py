"""The site file's rules: strict keys, cross-field seed rules, and messages that name the file and key."""

from pathlib import Path

import pytest

from gateway.site.config import ConfigError, load_site, parse_site

NAMEPLATES = {"sim-32": 32.0, "sim-48": 48.0}


def lookup(name: str) -> float:
    return NAMEPLATES[name]


def charger(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"cp{i}", "profile": "sim-32", "transport": {"type": "tcp", "host": "127.0.0.1", "port": 5000 + i},
            **extra}


def site(**extra: object) -> dict[str, object]:
    data: dict[str, object] = {"installation_limit_a": 100, "network_limit_a": 80,
                               "chargers": [charger(1), charger(2), charger(3)]}
    data.update(extra)
    return data


def test_valid_site_parses_with_defaults() -> None:
    cfg, notes = parse_site(site(), "site.yaml", lookup)
    assert [c.id for c in cfg.chargers] == ["cp1", "cp2", "cp3"]
    assert cfg.enabled is False
    assert cfg.chargers[0].site_phases == (0, 1, 2)
    assert notes == []


def test_unknown_key_is_named_with_its_path() -> None:
    data = site(chargers=[charger(1, breaker_limt_a=20)])
    with pytest.raises(ConfigError) as err:
        parse_site(data, "site.yaml", lookup)
    assert "site.yaml: chargers[0].breaker_limt_a: unknown key" in str(err.value)


def test_every_error_is_reported_at_once() -> None:
    data = site(network_limit_a=120, chargers=[charger(1, breaker_limit_a=40), charger(1)])
    with pytest.raises(ConfigError) as err:
        parse_site(data, "site.yaml", lookup)
    paths = {issue.path for issue in err.value.issues}
    assert {"network_limit_a", "chargers[0].breaker_limit_a", "chargers[1].id"} <= paths


def test_network_limit_above_what_chargers_can_draw_is_refused() -> None:
    data = site(installation_limit_a=200, network_limit_a=97)
    with pytest.raises(ConfigError, match=r"above the sum of the chargers' limits on the busiest phase \(96 A\)"):
        parse_site(data, "site.yaml", lookup)


def test_network_limit_below_six_amps_per_charger_is_a_note_not_an_error() -> None:
    _, notes = parse_site(site(network_limit_a=12), "site.yaml", lookup)
    assert any("take turns" in n for n in notes)


def test_phase_rotation_and_single_phase_chargers() -> None:
    data = site(network_limit_a=60,
                chargers=[charger(1, phase_rotation="L2L3L1"), charger(2, phases=1, phase_rotation="L3")])
    cfg, _ = parse_site(data, "site.yaml", lookup)
    assert cfg.chargers[0].site_phases == (1, 2, 0)
    assert cfg.chargers[1].site_phases == (2,)
    with pytest.raises(ConfigError, match="permutation"):
        parse_site(site(chargers=[charger(1, phase_rotation="L1L1L2")]), "site.yaml", lookup)


def test_circuit_tree_rules() -> None:
    data = site(circuits=[{"id": "a", "parent": "b", "limit_a": 40}, {"id": "b", "parent": "a", "limit_a": 40}],
                chargers=[charger(1, circuit="nowhere")])
    with pytest.raises(ConfigError) as err:
        parse_site(data, "site.yaml", lookup)
    text = str(err.value)
    assert "loop" in text and "chargers[0].circuit: unknown circuit 'nowhere'" in text


def test_unknown_profile_and_duplicate_yaml_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no profile named 'nope'"):
        parse_site(site(chargers=[charger(1, profile="nope")]), "site.yaml", lookup)
    path = tmp_path / "dup.yaml"
    path.write_text("installation_limit_a: 10\ninstallation_limit_a: 20\nnetwork_limit_a: 5\n")
    with pytest.raises(ConfigError, match="duplicate key 'installation_limit_a'"):
        load_site(path, lookup)


def test_nan_and_negative_limits_are_refused() -> None:
    with pytest.raises(ConfigError, match="network_limit_a"):
        parse_site(site(network_limit_a=float("nan")), "site.yaml", lookup)
    with pytest.raises(ConfigError, match="installation_limit_a"):
        parse_site(site(installation_limit_a=-1), "site.yaml", lookup)
