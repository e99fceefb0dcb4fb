"""`powershare profiles` and `powershare check-config`, run through the real CLI entry point."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import REPO

from gateway.cli.main import main

EXAMPLE = REPO / "examples" / "site.yaml"


def charger(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"cp{i}", "profile": "powershare-sim", "transport": {"type": "tcp", "host": "127.0.0.1"}, **extra}


def write_site(tmp_path: Path, **extra: Any) -> Path:
    data: dict[str, Any] = {"installation_limit_a": 100, "network_limit_a": 60,
                            "chargers": [charger(1), charger(2)]}
    data.update(extra)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_profiles_lists_every_shipped_profile_with_capabilities(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    for name in ("heidelberg-energy-control", "keba-p40", "alfen-eve", "eastron-sdm630", "powershare-sim-meter"):
        assert name in out
    heidelberg = next(line for line in out.splitlines() if "heidelberg-energy-control" in line)
    assert "rtu" in heidelberg and "16" in heidelberg and "yes" in heidelberg


def test_profiles_kind_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--kind", "meter"]) == 0
    out = capsys.readouterr().out
    assert "janitza-umg604" in out and "keba-p40" not in out


def test_profiles_show_prints_points(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--show", "keba-p40"]) == 0
    out = capsys.readouterr().out
    assert "5004 (0x138C)" in out  # the setpoint register
    assert "(charging_state)" in out and "state rules" in out
    assert "max_registers_per_read = 2" in out


def test_profiles_show_unknown_name_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--show", "no-such-box"]) == 1
    assert "no profile named 'no-such-box'" in capsys.readouterr().err


def test_site_profile_directories_are_loaded_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "profiles"
    extra.mkdir()
    (extra / "keba-p40.yaml").write_text("name: keba-p40\n")
    assert main(["profiles", "--profiles", str(extra)]) == 1
    assert "keba-p40.yaml" in capsys.readouterr().err


def test_check_config_accepts_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {EXAMPLE}")
    assert "chargers: 5" in out and "circuits: 1" in out and "network limit 63 A" in out


def test_check_config_ok_with_summary_and_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, network_limit_a=10)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ok:" in out and "chargers: 2" in out and "take turns" in out


def test_check_config_reports_every_error_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, network_limit_a=120, chargers=[
        charger(1, profile="heidelberg-energy-control"),          # RTU-only profile on TCP
        charger(2, breaker_limt_a=20),                            # misspelt key
        charger(3, profile="nope"),
    ])
    assert main(["check-config", str(path)]) == 1
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    err = captured.err
    assert f"{path}: chargers[0].transport.type: profile 'heidelberg-energy-control' supports rtu, rtu-over-tcp, " \
           "not tcp" in err
    assert f"{path}: chargers[1].breaker_limt_a: unknown key" in err


def test_check_config_transport_error_alone_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, network_limit_a=30, chargers=[charger(1, profile="heidelberg-energy-control")])
    assert main(["check-config", str(path)]) == 1
    assert "chargers[0].transport.type" in capsys.readouterr().err


def test_check_config_needs_the_unit_id_where_the_device_does_not_use_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, network_limit_a=30, chargers=[charger(1, profile="keba-p40")])
    assert main(["check-config", str(path)]) == 1
    assert "chargers[0].transport.unit: profile 'keba-p40' answers on unit 255" in capsys.readouterr().err
    path = write_site(tmp_path, network_limit_a=30, chargers=[
        charger(1, profile="keba-p40", transport={"type": "tcp", "host": "10.0.0.5", "unit": 255})])
    assert main(["check-config", str(path)]) == 0


def test_check_config_refuses_a_timeout_the_device_cannot_take(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rtu = {"type": "rtu", "device": "/dev/ttyUSB0"}
    path = write_site(tmp_path, network_limit_a=16, chargers=[
        charger(1, profile="heidelberg-energy-control", transport=rtu, comm_timeout_s=120)])
    assert main(["check-config", str(path)]) == 1
    assert "chargers[0].comm_timeout_s: profile 'heidelberg-energy-control' cannot be programmed" in \
        capsys.readouterr().err


def test_check_config_notes_chargers_without_failsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_site(tmp_path, network_limit_a=30, chargers=[charger(1, profile="alfen-eve")])
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "cp1 (alfen-eve) has no programmable fail-safe" in out
    assert "sets its communication timeout on the device" in out


def test_check_config_unreadable_or_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("installation_limit_a: 10\ninstallation_limit_a: 20\n")
    assert main(["check-config", str(broken)]) == 1
    assert "duplicate key" in capsys.readouterr().err
