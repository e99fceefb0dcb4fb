"""The deployment files say only what the product can do: every command they run parses with the real CLI, the
compose site passes ``check-config`` and matches what the simulator service serves, and the systemd unit keeps
serial ports open to the service. ``docker-compose`` and ``systemd-analyze`` check the files too where installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import REPO

from drivers.profile import ProfileRegistry
from gateway.cli.main import build_parser
from gateway.site.config import OcppTransport, TcpTransport
from gateway.site.validation import load_checked_site

ROOT = REPO
COMPOSE = ROOT / "docker-compose.yml"
UNIT = ROOT / "deploy" / "powershare.service"


def parse(command: list[str]) -> Any:
    """The namespace the real CLI makes of ``command``; a wrong option fails the test with argparse's message."""
    assert command[0] == "powershare", command
    try:
        return build_parser().parse_args(command[1:])
    except SystemExit as exc:  # argparse has printed why
        raise AssertionError(f"{command} is not a valid powershare command") from exc


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_every_compose_service_runs_a_real_command() -> None:
    services = {name: s for name, s in compose()["services"].items() if "image" not in s or "build" in s}
    assert set(services) == {"gateway", "simulator", "csms"}
    commands = {name: parse(service["command"]) for name, service in services.items()}
    assert commands["gateway"].func.__module__ == "gateway.cli.run"
    assert commands["simulator"].func.__module__ == "gateway.cli.simulate"
    assert commands["csms"].func.__module__ == "gateway.cli.csms"
    for service in services.values():
        assert service["build"] == "."


def test_the_compose_site_is_accepted_and_matches_the_simulator() -> None:
    services = compose()["services"]
    gateway = parse(services["gateway"]["command"])
    mounts = dict(volume.split(":")[:2][::-1] for volume in services["gateway"]["volumes"]
                  if volume.startswith("./"))
    site_file = ROOT / mounts[str(gateway.config)]
    site, _ = load_checked_site(site_file, ProfileRegistry.shipped())

    simulator = parse(services["simulator"]["command"])
    port = int(simulator.tcp.rpartition(":")[2])
    units = set(range(1, 7))
    assert simulator.units == "1-6"
    transports = [c.transport for c in site.chargers if not isinstance(c.transport, OcppTransport)]
    assert all(isinstance(t, TcpTransport) and t.host == "simulator" and t.port == port for t in transports)
    assert {t.unit for t in transports} == units
    followers = [c.transport for c in site.chargers if isinstance(c.transport, OcppTransport)]
    assert [t.charge_point_id for t in followers] == [f"{simulator.ocpp_prefix}{n}" for n in
                                                       range(1, simulator.ocpp_chargers + 1)]
    assert site.ocpp_endpoint is not None and simulator.ocpp == f"ws://gateway:{site.ocpp_endpoint.port}/ocpp"
    key_mounts = [v for v in services["simulator"]["volumes"] if v.endswith(str(simulator.ocpp_password_file) + ":ro")]
    assert key_mounts and all(f"{key_mounts[0].split(':')[0]}:/etc/powershare/{t.password_file}:ro"
                              in services["gateway"]["volumes"] for t in followers)
    assert site.meter is not None and site.meter.profile == simulator.meter
    assert site.meter.transport.unit == simulator.meter_unit
    assert site.bms is not None and f"{site.bms.port}:{site.bms.port}" in services["gateway"]["ports"]
    assert services["gateway"]["environment"]["POWERSHARE_HEALTH_PORT"] == str(site.bms.port)
    assert gateway.state_dir == Path("/var/lib/powershare")
    assert any(v.endswith(":/var/lib/powershare") for v in services["gateway"]["volumes"])


def test_the_broker_is_optional_and_is_the_compose_sites_broker() -> None:
    broker = compose()["services"]["broker"]
    assert broker["profiles"] == ["mqtt"] and broker["image"].startswith("eclipse-mosquitto:")
    site, _ = load_checked_site(ROOT / "deploy" / "compose-site.yaml", ProfileRegistry.shipped())
    assert site.mqtt is not None and site.mqtt.host == "broker"
    assert f"{site.mqtt.port}:{site.mqtt.port}" in broker["ports"]


def test_the_image_copies_everything_the_package_installs() -> None:
    """``pip install .`` in the image fails on a data file that was not copied in (the documentation)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {glob.split("/")[0] for globs in pyproject["tool"]["setuptools"]["data-files"].values() for glob in globs}
    copied = {source.rstrip("/") for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
              if line.startswith("COPY ") for source in line.split()[1:-1]}
    assert needed <= copied, needed - copied


def test_the_image_runs_the_gateway_as_a_user_with_a_health_check() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    assert next(line for line in lines if line and not line.startswith("#")) == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    cmd = next(line for line in lines if line.startswith("CMD ["))
    parse(yaml.safe_load(cmd.removeprefix("CMD ")))


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_systemd_unit_is_hardened_and_still_reaches_serial_ports() -> None:
    unit = unit_settings()
    assert unit["User"] == ["powershare"] and unit["SupplementaryGroups"] == ["dialout"]
    assert unit["StateDirectory"] == ["powershare"] and unit["Restart"] == ["on-failure"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    assert "PrivateDevices" not in unit, "PrivateDevices hides /dev/ttyUSB*"
    assert {"char-ttyUSB rw", "char-ttyS rw"} <= set(unit["DeviceAllow"])
    for key in ("ExecStart", "ExecStartPre"):
        parse(["powershare", *unit[key][0].split()[1:]])


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify insists that the executable exists; the installed path is checked by the test above.
    copy = tmp_path / "powershare.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/powershare/bin/powershare", "/bin/true"),
                    encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
