"""The release as a user installs it: a wheel built from the source tree, installed in a fresh virtual environment
in a temporary directory, with the profiles, the web page's static files, the message catalogs and the documentation
inside, and the systemd unit's ``Documentation=`` pointing at files the installation has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support.paths import REPO

from gateway import __version__

pytestmark = pytest.mark.slow
OPT = "/opt/powershare"
"""The documented installation prefix (docs/deployment.md, deploy/powershare.service)."""


def run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package, not the work tree
    done = subprocess.run([str(a) for a in args], cwd=cwd or Path("/"), capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prefix of a fresh venv with the wheel installed; its dependencies come from the test environment's
    site-packages through a path file (installing them again would only test the package index)."""
    tmp = tmp_path_factory.mktemp("release")
    source = tmp / "source"  # a copy of the tracked files, so the build leaves nothing in the work tree
    source.mkdir()
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", tmp / "dist", cwd=source)
    (wheel,) = (tmp / "dist").glob("powershare-*.whl")
    assert wheel.name.startswith(f"powershare-{__version__}-")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel)
    site_packages = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                         .strip())
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv


def test_the_installed_command_lists_the_shipped_profiles(installed: Path) -> None:
    out = run(installed / "bin" / "powershare", "profiles")
    assert "powershare-sim" in out and "powershare-sim-meter" in out
    assert run(installed / "bin" / "powershare", "--version").strip() == f"powershare {__version__}"


def test_the_package_is_the_installed_one_with_its_static_files(installed: Path) -> None:
    code = ("import gateway, importlib.resources as r; print(gateway.__file__); "
            "s = r.files('gateway.faces.web') / 'static'; print(sorted(p.name for p in s.iterdir()))")
    where, static = run(installed / "bin" / "python", "-c", code).splitlines()
    assert where.startswith(str(installed))
    shipped = {"index.html", "app.js", "app.css", "favicon.svg", "i18n.js", "history.js", "history.css"}
    assert shipped <= set(eval(static))


def test_the_installed_command_speaks_german_from_the_shipped_catalogs(installed: Path) -> None:
    """The catalogs are package data of the wheel: without them the German command would fall back to English."""
    code = ("import importlib.resources as r; "
            "print(sorted(p.name for p in (r.files('gateway.i18n') / 'catalogs').iterdir()))")
    assert {"en.json", "de.json"} <= set(eval(run(installed / "bin" / "python", "-c", code)))
    assert "Geräteprofile" in run(installed / "bin" / "powershare", "--lang", "de", "profiles", "--help")


def test_the_systemd_units_documentation_exists_in_an_installation(installed: Path) -> None:
    unit = (REPO / "deploy" / "powershare.service").read_text(encoding="utf-8")
    (line,) = [line for line in unit.splitlines() if line.startswith("Documentation=")]
    uris = line.removeprefix("Documentation=").split()
    assert uris
    for uri in uris:
        path = re.fullmatch(r"file://(/.*)", uri)
        assert path is not None and path.group(1).startswith(OPT + "/"), uri
        assert (installed / path.group(1).removeprefix(OPT + "/")).is_file(), uri
    assert (installed / "share" / "doc" / "powershare" / "CHANGELOG.md").is_file()
