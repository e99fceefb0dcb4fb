"""The ``bms:`` section of the site file: optional, strict, and errors that name the key."""

from __future__ import annotations

import ipaddress

import pytest
from support.paths import REPO

from gateway.site.config import BmsConfig, BmsRtuConfig, ConfigError, parse_site

SITE = {"installation_limit_a": 40, "network_limit_a": 32}


def lookup(name: str) -> float:
    raise KeyError(name)


def test_a_site_without_the_section_has_no_bms_face() -> None:
    site, _ = parse_site(dict(SITE), "site.yaml", lookup)
    assert site.bms is None


def test_the_section_with_defaults_and_an_allow_list() -> None:
    site, _ = parse_site({**SITE, "bms": {"allow_write_from": ["10.0.8.21", "10.0.9.0/24"],
                                         "rtu": {"device": "/dev/ttyUSB1", "parity": "E"}}}, "site.yaml", lookup)
    assert site.bms is not None
    assert (site.bms.enabled, site.bms.host, site.bms.port, site.bms.unit_id, site.bms.read_only) == (
        True, "0.0.0.0", 502, 1, False)
    assert site.bms.allow_write_from == (ipaddress.ip_network("10.0.8.21"), ipaddress.ip_network("10.0.9.0/24"))
    assert site.bms.rtu is not None and (site.bms.rtu.baudrate, site.bms.rtu.parity) == (19200, "E")


@pytest.mark.parametrize(("section", "where"), [
    ({"allow_write_from": ["bms.local"]}, "bms.allow_write_from[0]"),
    ({"allow_write_from": ["10.0.9.1/24"]}, "bms.allow_write_from[0]"),
    ({"unit_id": 0}, "bms.unit_id"),
    ({"unit_id": 248}, "bms.unit_id"),
    ({"port": 70000}, "bms.port"),
    ({"read_ony": True}, "bms.read_ony"),
    ({"rtu": {"device": "/dev/ttyUSB1", "parity": "X"}}, "bms.rtu.parity"),
])
def test_mistakes_are_named_with_their_key(section: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_site({**SITE, "bms": section}, "site.yaml", lookup)
    assert f"site.yaml: {where}:" in str(err.value)


def test_the_section_is_frozen() -> None:
    config = BmsConfig()
    with pytest.raises(ValueError):
        config.read_only = True  # type: ignore[misc]


@pytest.mark.parametrize("doc", ["configuration.md", "bms.md"])
def test_every_key_of_the_section_is_documented(doc: str) -> None:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    keys = {*BmsConfig.model_fields, *BmsRtuConfig.model_fields}
    assert sorted(k for k in keys if f"`{k}`" not in text and f"{k}:" not in text) == []
