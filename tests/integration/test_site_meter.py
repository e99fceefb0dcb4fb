"""The site meter: its section of the site file, and end to end over loopback Modbus with the meter simulator.

The meter sits on the chargers' TCP endpoint (one shared bus) and sees a background load plus what the simulated
vehicles physically draw. The supervisor turns "load that is not ours" into less headroom, and a silent meter
into its fallback limit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.aio import cancel_and_wait
from drivers.profile import ProfileRegistry
from drivers.sim.clock import ScaledClock
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.cli.main import main
from gateway.core.limits import LimitSource
from gateway.runtime.app import GatewayApp
from gateway.site.config import ConfigError, parse_site
from gateway.site.validation import load_checked_site

REGISTRY = ProfileRegistry.shipped()
BREAKER_A = 63.0


def site_data(port: int = 502, **meter: Any) -> dict[str, Any]:
    return {
        "installation_limit_a": 100, "network_limit_a": 60, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "comm_timeout_s": 5,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i, "timeout_s": 0.3}}
                     for i in (1, 2, 3)],
        "meter": {"profile": "powershare-sim-meter",
                  "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": 100, "timeout_s": 0.3},
                  "limit_a": BREAKER_A, "margin_a": 1, "fallback_limit_a": 18, "stale_after_s": 1.0, **meter},
    }


def check(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        load_checked_site(path, REGISTRY)
    except ConfigError as exc:
        return [str(issue) for issue in exc.issues]
    return []


def test_a_meter_section_is_checked_like_the_rest_of_the_site_file(tmp_path: Path) -> None:
    assert check(tmp_path, site_data()) == []
    assert check(tmp_path, site_data(circuit="garage", fallback_limit_a=70)) == [
        "meter.circuit: unknown circuit 'garage'", "meter.fallback_limit_a: 70 A is above the metered node's "
        "limit 63 A"]
    assert check(tmp_path, site_data(profile="powershare-sim")) == [
        "meter.profile: 'powershare-sim' is a charger profile; the meter needs a meter profile "
        "(see `powershare profiles --kind meter`)"]
    assert check(tmp_path, site_data(profile="no-such-meter"))[0].startswith("meter.profile: no profile named")
    data = site_data()
    del data["meter"]["fallback_limit_a"]
    assert check(tmp_path, data) == ["meter.fallback_limit_a: required key is missing"]


def test_check_config_summarises_the_meter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site_data()), encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    assert "meter: powershare-sim-meter via tcp 127.0.0.1:502 unit 100 on site (limit 63 A, margin 1 A, 18 A " \
        "while silent for 1 s)" in capsys.readouterr().out


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    """Poll the simulated devices (they have no events to wait on) until ``condition`` holds."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


async def test_background_load_becomes_less_headroom_and_a_silent_meter_falls_back() -> None:
    clock = ScaledClock(1.0)
    sim = SimulatedSite(clock)
    line = sim.add_line(TcpListen("127.0.0.1", 0))
    chargers = sim.add_chargers(line, REGISTRY.charger("powershare-sim"), (1, 2, 3))
    meter = sim.add_meter(line, REGISTRY.meter("powershare-sim-meter"), 100, background_a=(5.0, 5.0, 5.0))
    for charger, name in zip(chargers, "abc", strict=True):
        charger.plug(VehicleSpec(name, lag_s=0.3, battery_kwh=500))
    await sim.start()
    assert line.server is not None
    site, _ = parse_site(site_data(line.server.port), "site.yaml", REGISTRY.nameplate_a)
    app = GatewayApp.build(site, REGISTRY, state_dir=None)
    over: list[str] = []
    grace_until = 0.0

    async def watch_the_breaker() -> None:
        """The site breaker sees the background plus what the cars physically draw."""
        while True:
            now = clock()
            worst = max(meter.phase_currents_a())
            if now > grace_until and worst > BREAKER_A:
                over.append(f"t={now:.2f} {worst:.1f} A")
            await asyncio.sleep(0.02)

    def setpoints() -> list[float]:
        return [c.setpoint_a for c in chargers]

    watcher = asyncio.create_task(watch_the_breaker())
    try:
        async with app:
            await app.supervisor.wait_ready(5)
            await until(lambda: setpoints() == [19, 19, 19])  # 63 - 5 background - 1 margin = 57 A for three
            assert app.supervisor.status().limit_source is LimitSource.SITE_METER

            grace_until = clock() + 2.5  # a poll, a step and the cars' lag: the building moved first
            meter.background_a = (35.0, 5.0, 5.0)
            await until(lambda: setpoints() == [9, 9, 9])  # 63 - 35 - 1 = 27 A on L1
            assert app.supervisor.status().effective_limit_a[0] == pytest.approx(27, abs=0.5)

            line.server.set_fault(100, Fault(FaultKind.SILENT))
            await until(lambda: setpoints() == [6, 6, 6])  # the 18 A fallback, never unlimited
            assert app.supervisor.status().effective_limit_a == (18, 18, 18)
            assert "meter-silent" in [e.kind for e in app.supervisor.recent_events()]

            line.server.set_fault(100, Fault(FaultKind.NONE))
            meter.background_a = (5.0, 5.0, 5.0)
            await until(lambda: setpoints() == [19, 19, 19])
            assert "meter-available" in [e.kind for e in app.supervisor.recent_events()]
    finally:
        await cancel_and_wait(watcher)
        await sim.stop()
    assert not over, over[:5]
