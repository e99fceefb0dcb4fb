"""``powershare`` speaks the installer's language: ``check-config`` as a separate process, with the language from
the locale (``LANG=de_DE.UTF-8``), from ``--lang`` (before or after the command) and from ``POWERSHARE_LANG``, in
their order of precedence; and English when nothing asks for another language (every order of precedence is in
tests/unit/test_i18n.py; these run the real command). The help, the summary of a good file
and argparse's own words follow too; the exit status never depends on the language.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.paths import REPO

from gateway.i18n.language import ENVIRONMENT

BROKEN = {"installation_limit_a": 40, "network_limit_a": 60.5,
          "chargers": [{"id": "bay-1", "profile": "powershare-sim", "breaker_limit_a": 4,
                        "transport": {"type": "tcp", "host": "10.0.0.21", "unit": i}} for i in (1, 2)]}
GOOD = {"name": "depot", "installation_limit_a": 63, "network_limit_a": 32.5,
        "chargers": [{"id": f"bay-{i}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "10.0.0.21", "unit": i}} for i in (1, 2)]}
GERMAN_ERRORS = ("network_limit_a: 60,5 A liegt über der Anlagen-Stromgrenze von 40 A",
                 "chargers[1].id: Ladepunkt-ID 'bay-1' ist doppelt vergeben",
                 "chargers[0].breaker_limit_a: unter 6 A kann kein Fahrzeug laden (IEC 61851)")
ENGLISH_ERRORS = ("network_limit_a: 60.5 A is above the installation limit 40 A",
                  "chargers[1].id: duplicate charger id 'bay-1'",
                  "chargers[0].breaker_limit_a: below 6 A no vehicle can charge (IEC 61851)")


def powershare(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, with only the locale variables given here."""
    clean = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**clean, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(BROKEN), encoding="utf-8")
    return path


@pytest.mark.parametrize(("args", "env"), [
    ((), {"LANG": "de_DE.UTF-8"}),
    (("--lang", "de"), {"LANG": "en_US.UTF-8"}),
    ((), {"POWERSHARE_LANG": "de", "LC_ALL": "C.UTF-8"}),
], ids=["LANG", "--lang after the command", "POWERSHARE_LANG over LC_ALL"])
def test_check_config_errors_in_german(broken: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
    done = powershare("check-config", *args, broken, env=env)
    assert done.returncode == 1 and done.stdout == ""
    for line in GERMAN_ERRORS:
        assert f"{broken}: {line}" in done.stderr, done.stderr
    assert not any(line in done.stderr for line in ENGLISH_ERRORS)


@pytest.mark.parametrize(("args", "env"), [
    ((), {}),
    ((), {"LC_ALL": "C", "LANG": "de_DE.UTF-8"}),
    (("--lang=en",), {"LANG": "de_DE.UTF-8"}),
], ids=["no locale", "LC_ALL=C over LANG", "--lang=en over LANG"])
def test_check_config_errors_in_english_otherwise(broken: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
    done = powershare("check-config", *args, broken, env=env)
    assert done.returncode == 1
    for line in ENGLISH_ERRORS:
        assert f"{broken}: {line}" in done.stderr, done.stderr
    assert "Ladepunkt" not in done.stderr


def test_a_good_file_is_summarised_in_german(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    done = powershare("--lang", "de", "check-config", path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"OK: {path}"
    assert lines[1] == ("Standort 'depot': 3-phasig 230 V, Anlagen-Stromgrenze 63 A, Verbund-Stromgrenze 32,5 A je "
                        "Phase, Lastmanagement ausgeschaltet")
    assert lines[2] == "Ladepunkte: 2"
    assert "  bay-1: powershare-sim über tcp 10.0.0.21:502 Unit-ID 1, Stromgrenze 32 A, 3-phasig L1L2L3, " \
           "Stromkreis site" in lines


def test_help_and_argparse_words_in_german() -> None:
    helped = powershare("check-config", "--help", env={"LANG": "de_DE.UTF-8"})
    assert helped.returncode == 0
    assert helped.stdout.startswith("Aufruf: powershare check-config")
    assert "Optionen:" in helped.stdout and "diese Hilfe zeigen und beenden" in helped.stdout
    assert "die Anlagendatei (YAML)" in helped.stdout
    top = powershare("--help", env={"LANG": "de_DE.UTF-8"})
    assert "eine Anlagendatei prüfen und zusammenfassen" in top.stdout and "BEFEHL" in top.stdout
    missing = powershare("check-config", env={"LANG": "de_DE.UTF-8"})
    assert missing.returncode == 2 and "powershare check-config: Fehler: " in missing.stderr
    wrong = powershare("--lang", "xx", "check-config", "site.yaml")
    assert wrong.returncode == 2 and "--lang" in wrong.stderr
