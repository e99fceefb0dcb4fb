"""``powershare demo``: the command as CI runs it (no terminal), the live view, the car park and the accounting."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from support.paths import REPO

from gateway.cli.main import main
from gateway.demo.accounting import OverLimitAccount
from gateway.demo.site import Demo, DemoOptions, Frame
from gateway.demo.traffic import MomentKind, Traffic, script
from gateway.demo.view import LinePrinter, render
from gateway.runtime.app import GatewayApp

ROOT = REPO


def test_the_demo_in_ci_keeps_the_limit_through_its_script(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--duration", "16", "--summary-json", str(out),
         "--bms-port", "0", "--web-port", "0", "--seed", "3"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["over_limit_amp_seconds"] == 0
    assert summary["limit_a"] == 48 and summary["lowest_limit_a"] == 24
    assert set(summary["units"]) == {f"cp{i}" for i in range(1, 7)}
    assert sum(u["energy_wh"] for u in summary["units"].values()) > 0
    assert 0 < max(summary["peak_a"].values()) <= 48
    lines = done.stdout.splitlines()
    assert sum(1 for line in lines if " s  limit " in line) >= 14  # a compact line per second, no live table
    text = done.stdout
    for seen in ("network limit 24 A (demo script, as a BMS would)", "stops answering (script)",
                 "unavailable: timeout", "available again", "network limit 48 A"):
        assert seen in text, text
    assert "over the limit: 0 A·s" in lines[-1]
    assert any(line.startswith("installer web page: http://127.0.0.1:") and "password for this demo: demo-" in line
               for line in lines), lines[:5]


class RecordingFace:
    def __init__(self, app: GatewayApp) -> None:
        self.app = app
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append(f"start {len(self.app.settings.config.chargers)}")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_the_live_view_and_the_seam_for_more_faces() -> None:
    faces: list[RecordingFace] = []

    def make(app: GatewayApp) -> RecordingFace:
        faces.append(RecordingFace(app))
        return faces[-1]

    frames: list[Frame] = []
    demo = Demo(DemoOptions(chargers=3, limit_a=30, duration_s=2.5, bms_port=0), extra_faces=[make])
    summary = await demo.run(asyncio.Event(), frames.append, 0.5)
    assert faces[0].calls == ["start 3", "stop"]
    assert summary["over_limit_amp_seconds"] == 0 and len(summary["units"]) == 3

    console = Console(record=True, width=160, color_system=None)
    console.print(render(frames[-1]))
    screen = console.export_text()
    for seen in ("powershare demo", "cp1 (3~ L1L2L3)", "cp2 (3~ L2L3L1)", "network limit 30 A per phase, set by "
                 "network", "over the limit: 0.0 A·s", "plugs into", "mbpoll -m tcp -p"):
        assert seen in screen, screen
    console.print(render(frames[-1], "de"))
    german = console.export_text()
    for seen in ("das echte Gateway führt 3 simulierte Ladepunkte", "Sollwert A", "Verbindung", "verfügbar",
                 "Verbund-Stromgrenze 30 A je Phase, gesetzt durch network", "über der Stromgrenze: 0,0 A·s",
                 "Strg-C beendet."):
        assert seen in german, german
    lines: list[str] = []
    printer = LinePrinter(lines.append)
    printer(frames[-1])
    printer(frames[-1])
    assert sum(1 for line in lines if "plugs into" in line) == 2  # two cars at the start, each printed once
    assert lines[-1].lstrip().startswith(f"{frames[-1].elapsed_s:.0f} s  limit 30 A (network)")


def test_bad_options_are_refused_before_anything_listens(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--chargers", "1", "--limit", "40", "--duration", "1"]) == 2
    assert "network_limit_a: 40 A is above the sum of the chargers' limits" in capsys.readouterr().err
    assert main(["demo", "--speed", "0", "--duration", "1"]) == 2


def test_the_car_park_is_the_same_for_a_seed_and_varied() -> None:
    def first(seed: int) -> list[tuple[str, float, int, float, float]]:
        traffic = Traffic(seed, speed=60)
        visits = [traffic.visit() for _ in range(12)]
        return [(v.model.label, v.car.onboard_limit_a, v.car.phases, v.stay_s, traffic.gap_s()) for v in visits]

    assert first(7) == first(7)
    assert first(7) != first(8)
    cars = first(7)
    assert {phases for _, _, phases, _, _ in cars} == {1, 3}
    assert len({limit for _, limit, _, _, _ in cars}) >= 3
    visit = Traffic(1, speed=60).visit()
    assert visit.car.battery_kwh == pytest.approx(visit.model.battery_kwh / 60)


def test_the_script_fits_its_cycle_and_gives_the_limit_back() -> None:
    moments = script(20, 48)
    assert [m.kind for m in moments] == [MomentKind.LIMIT, MomentKind.LIMIT, MomentKind.SILENT, MomentKind.ANSWER]
    assert [m.limit_a for m in moments[:2]] == [24, 48]
    assert all(0 < m.at_s < 20 for m in moments)
    assert script(20, 8)[0].limit_a == 6


def test_over_limit_counts_amp_seconds_after_the_grace_only() -> None:
    account = OverLimitAccount(grace_s=5)
    for t in range(0, 11):
        account.sample(float(t), (30.0, 20.0, 0.0), (48.0, 48.0, 48.0) if t < 2 else (24.0, 24.0, 24.0))
    # Lowered at t=2: 30 A on L1 is fine until t=7 (the grace), then 6 A too much for 4 s (t=7..10 samples).
    assert account.over_amp_seconds == pytest.approx(6 * 4)
    assert account.peak_a == [30, 20, 0] and account.lowest_limit_a == 24


@given(st.lists(st.tuples(st.floats(0.01, 2), st.floats(0, 60), st.floats(0, 60)), min_size=1, max_size=40))
def test_drawing_within_the_limit_never_counts(steps: list[tuple[float, float, float]]) -> None:
    account = OverLimitAccount()
    now = 0.0
    for dt, drawn, limit in steps:
        now += dt
        account.sample(now, (min(drawn, limit),) * 3, (limit,) * 3)
    assert account.over_amp_seconds == 0


@given(st.floats(0.1, 50), st.floats(6, 60), st.floats(6, 100))
def test_a_constant_excess_counts_in_full_without_a_lowering(excess: float, limit: float, seconds: float) -> None:
    account = OverLimitAccount()
    account.sample(0.0, (limit + excess, 0, 0), (limit, limit, limit))
    account.sample(seconds, (limit + excess, 0, 0), (limit, limit, limit))
    assert account.over_amp_seconds == pytest.approx(excess * seconds)
