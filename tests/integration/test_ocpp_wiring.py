"""OCPP chargers in the site file: validation, check-config, the wiring's stations and transaction ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.certs import self_signed

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from gateway.cli.main import main
from gateway.runtime.ocpp_wiring import ID_BLOCK, PersistentIds, station_settings
from gateway.runtime.wiring import SiteWiring
from gateway.site.config import ConfigError, parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
KEY = "0123456789abcdef0123"


def ocpp(cid: str, cp_id: str, **transport: Any) -> dict[str, Any]:
    return {"id": cid, "transport": {"type": "ocpp", "charge_point_id": cp_id, "password_file": "keys/cp.key",
                                     "max_current_a": 32, **transport}}


def site(*chargers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"installation_limit_a": 100, "network_limit_a": 30, "chargers": list(chargers), **extra}


def issues(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    return {issue.path: issue.message for issue in refused.value.issues}


def test_an_ocpp_charger_has_no_profile_and_a_modbus_charger_needs_one() -> None:
    modbus = {"id": "mb", "transport": {"type": "tcp", "host": "10.0.0.1"}}
    found = issues(site(modbus, {**ocpp("oc", "CP-1"), "profile": "powershare-sim"}))
    assert "`profile` is required" in found["chargers[0]"]
    assert "an OCPP charger has no profile" in found["chargers[1]"]


def test_connectors_of_one_charge_point_must_agree_and_not_repeat() -> None:
    found = issues(site(ocpp("a", "CP-1"), ocpp("b", "CP-1"), ocpp("c", "CP-2", connector_id=2),
                        ocpp("d", "CP-2", connector_id=1, meter_interval_s=5)))
    assert "configured twice" in found["chargers[1].transport.connector_id"]
    assert "must be the same for all its connectors" in found["chargers[3].transport"]
    found = issues(site(ocpp("a", "CP-1", failsafe_current_key="K"),
                        ocpp("b", "CP-1", connector_id=2, failsafe_current_key="K")))
    assert "single-connector" in found["chargers[1].transport.failsafe_current_key"]


@pytest.mark.parametrize(("transport", "where"), [
    ({"charge_point_id": "CP/1"}, "chargers[0].transport.ocpp.charge_point_id"),
    ({"charge_point_id": "CP:1"}, "chargers[0].transport.ocpp.charge_point_id"),
    ({"max_current_a": 5}, "chargers[0].transport.ocpp.max_current_a"),
    ({"failsafe_timeout_key": "T"}, "chargers[0].transport.ocpp"),
    ({"meter_interval_s": 0}, "chargers[0].transport.ocpp.meter_interval_s"),
])
def test_bad_ocpp_keys_are_named(transport: dict[str, Any], where: str) -> None:
    assert where in issues(site(ocpp("a", "CP-1", **transport)))


def test_the_endpoint_needs_both_tls_files_and_breaker_limits_use_the_nameplate() -> None:
    assert "ocpp_endpoint" in issues(site(ocpp("a", "CP-1"), ocpp_endpoint={"tls_cert_file": "c.pem"}))
    assert "above the unit's nameplate 32 A" in issues(site({**ocpp("a", "CP-1"), "breaker_limit_a": 40}))[
        "chargers[0].breaker_limit_a"]


def write_site(tmp_path: Path, data: dict[str, Any], password: str | None = KEY) -> Path:
    (tmp_path / "keys").mkdir(exist_ok=True)
    if password is not None:
        (tmp_path / "keys" / "cp.key").write_text(password + "\n")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_config_summarises_a_mixed_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    modbus = {"id": "mb", "profile": "powershare-sim", "transport": {"type": "tcp", "host": "10.0.0.1"}}
    path = write_site(tmp_path, site(modbus, ocpp("oc", "CP-1", failsafe_current_key="FallbackCurrent"),
                                     ocpp("od", "CP-2"), ocpp_endpoint={"port": 9100}), password="short")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "oc: OCPP charge point CP-1 connector 1, limit 32 A" in out
    assert "OCPP endpoint: ws://0.0.0.0:9100/<chargePointId>" in out
    assert "od (OCPP CP-2) has no fail-safe configuration key" in out and "oc (OCPP" not in out
    assert "shorter than 16 characters" in out and "no TLS" in out


def test_check_config_refuses_what_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, site(ocpp("oc", "CP-1"), ocpp_endpoint={"tls_cert_file": "nope.pem",
                                                                        "tls_key_file": "nope.key"}), password=None)
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "chargers[0].transport.password_file: cannot read" in err
    assert "ocpp_endpoint.tls_cert_file: cannot load the certificate and key" in err


def test_transaction_ids_never_repeat_across_restarts(tmp_path: Path) -> None:
    store = JsonStore(tmp_path / "ids.json")
    first = PersistentIds(store)
    issued = [first.next_id() for _ in range(ID_BLOCK + 5)]
    again = PersistentIds(store)  # a restart (or a crash) in the middle of a block
    later = [again.next_id() for _ in range(3)]
    assert len(set(issued + later)) == len(issued) + 3 and min(later) > max(issued)
    assert store.load() == {"next_block": 2 * ID_BLOCK + 1 + ID_BLOCK}


def test_a_charge_point_whose_password_cannot_be_read_is_not_admitted_without_one(tmp_path: Path) -> None:
    config, _ = parse_site(site(ocpp("a", "CP-1")), "site.yaml", REGISTRY.nameplate_a)
    [settings] = station_settings(config, tmp_path)
    assert settings.password is not None and len(settings.password) >= 32
    write_site(tmp_path, site())
    [settings] = station_settings(config, tmp_path)
    assert settings.password == KEY


async def test_site_wiring_gives_ocpp_chargers_their_ratings_and_a_bus_per_charge_point(tmp_path: Path) -> None:
    write_site(tmp_path, site())
    modbus = {"id": "mb", "profile": "powershare-sim", "transport": {"type": "tcp", "host": "10.0.0.1"}}
    config, _ = parse_site(site(modbus, {**ocpp("a", "CP-1", failsafe_current_key="F"), "breaker_limit_a": 20},
                                ocpp("b", "CP-2"), ocpp("c", "CP-2", connector_id=2)),
                           "site.yaml", REGISTRY.nameplate_a)
    wiring = SiteWiring(REGISTRY, SiteSettings(config, REGISTRY.nameplate_a), BusPool(), tmp_path)
    a, b, c = config.chargers[1:]
    assert wiring.ratings(a).limit_a == 20 and wiring.ratings(a).nameplate_a == 32 and wiring.ratings(a).has_failsafe
    assert not wiring.ratings(b).has_failsafe
    handles = [wiring.make_driver(ch) for ch in (a, b, c)]
    assert [h.bus_key for h in handles] == ["ocpp:CP-1", "ocpp:CP-2", "ocpp:CP-2"]
    assert wiring.ocpp.endpoint.stations["CP-2"].settings.connectors == (1, 2)
    assert wiring.make_driver(config.chargers[0]).bus_key != "ocpp:CP-1"


def test_check_config_reads_the_central_systems_key_and_the_pages_certificate_next_to_the_site_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Only a start read them: check-config said the site was fine, and `run` then could not start.
    modbus = {"id": "mb", "profile": "powershare-sim", "transport": {"type": "tcp", "host": "10.0.0.1"}}
    upstream = {"url": "wss://cs.example.com/ocpp", "charge_point_id": "GW-1", "security_profile": 2,
                "password_file": "cs.key", "ca_file": "cs-ca.pem"}
    path = write_site(tmp_path, site(modbus, ocpp=upstream, web={"tls_cert": "page.pem", "tls_key": "page.key"}),
                      password=None)
    monkeypatch.chdir(tmp_path.parent)
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "ocpp.password_file: cannot read" in err and "ocpp.ca_file: cannot read" in err
    assert "web.tls_cert: cannot load the certificate and key" in err

    (tmp_path / "cs.key").write_text("an-authorization-key-for-gw\n", encoding="utf-8")
    cert, key = self_signed(tmp_path)
    cert.rename(tmp_path / "page.pem")
    key.rename(tmp_path / "page.key")
    (tmp_path / "cs-ca.pem").write_bytes((tmp_path / "page.pem").read_bytes())
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
