"""docs/ocpp.md stays true: its configuration table matches the code's, and its example script is valid."""

from __future__ import annotations

import re

import yaml
from support.paths import REPO

from gateway.faces.ocpp.config_keys import KEYS
from gateway.sim.csms import parse_script
from gateway.site.config import OcppConfig

DOC = (REPO / "docs" / "ocpp.md").read_text(encoding="utf-8")


def test_configuration_table_matches_the_key_table() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (RW|R) \| [^|]+ \| (`[^`]*`|\(empty\)) \| (yes|) *\|", DOC, re.MULTILINE)
    documented = {name: (access, default.strip("`") if default != "(empty)" else "", reboot == "yes")
                  for name, access, default, reboot in rows}
    assert documented == {spec.name: ("R" if spec.readonly else "RW", spec.default, spec.reboot_required)
                          for spec in KEYS}


def test_the_example_script_is_valid() -> None:
    block = DOC.split("Script format", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = parse_script(yaml.safe_load(block), "docs/ocpp.md")
    assert [s.action for s in steps] == ["SetChargingProfile", "GetCompositeSchedule", "RemoteStartTransaction",
                                         "TriggerMessage", "ClearChargingProfile"]


def test_the_client_example_is_a_valid_ocpp_section() -> None:
    block = DOC.split("```yaml\n", 1)[1].split("```", 1)[0]
    section = OcppConfig.model_validate(yaml.safe_load(block)["ocpp"])
    assert section.security_profile == 2 and section.authorization.mode == "free_vend"
