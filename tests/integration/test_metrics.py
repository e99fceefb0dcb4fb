"""``/metrics`` on the web server: the real gateway leading simulated chargers (one of them silent) with an OCPP
client whose central system is unreachable, scraped over HTTP and parsed the way Prometheus parses it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drivers.profile import ProfileRegistry
from drivers.sim.clock import ScaledClock
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.faces.ocpp.face import ocpp_face
from gateway.faces.web.face import WebFace, web_face
from gateway.runtime.app import GatewayApp
from gateway.site.config import WebConfig, parse_site

REGISTRY = ProfileRegistry.shipped()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_scrape_cleanly_and_say_what_the_gateway_does(tmp_path: Path) -> None:
    sim = SimulatedSite(ScaledClock(1.0))
    line = sim.add_line(TcpListen("127.0.0.1", 0))
    sim.add_chargers(line, REGISTRY.charger("powershare-sim"), (1, 2))
    await sim.start()
    assert line.server is not None
    line.server.set_fault(2, Fault(FaultKind.SILENT))
    data: dict[str, Any] = {
        "installation_limit_a": 40, "network_limit_a": 20, "enabled": True, "control": {"tick_s": 0.2},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port, "unit": i,
                                    "timeout_s": 0.2}} for i in (1, 2)],
        "ocpp": {"url": f"ws://127.0.0.1:{closed_port()}/ocpp", "charge_point_id": "gw", "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.2},
    }
    site, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    assert site.ocpp is not None
    app = GatewayApp.build(site, REGISTRY, state_dir=tmp_path, extra_faces=[
        ocpp_face(site.ocpp, tmp_path), web_face(tmp_path, config=WebConfig(host="127.0.0.1", port=0))])
    try:
        async with app, httpx.AsyncClient() as http:
            await app.supervisor.wait_ready(5)
            web = next(f for f in app.faces if isinstance(f, WebFace))
            url = web.server.url + "metrics"
            for _ in range(100):
                response = await http.get(url)
                got = samples(response.text)
                if got.get(("powershare_ocpp_client_errors_total", (("kind", "connection"),)), 0) >= 1 and \
                        got.get(("powershare_follower_errors_total", (("transport", "modbus"), ("unit", "cp2")))):
                    break
                await asyncio.sleep(0.1)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert got[("powershare_site_limit_amperes", (("phase", "L2"),))] == 20
            assert got[("powershare_network_limit_amperes", ())] == 20
            # Nothing moves while the central system is away (a 0 A guard profile): the scrape and the snapshot agree.
            status = app.supervisor.status()
            assert got[("powershare_site_measured_amperes", (("phase", "L1"),))] == status.measured_a[0]
            assert got[("powershare_site_booked_amperes", (("phase", "L3"),))] == status.allocated_a[2] > 0
            assert got[("powershare_unit_setpoint_amperes", (("unit", "cp1"),))] == status.units[0].setpoint_a
            assert got[("powershare_unit_current_amperes", (("phase", "L3"), ("unit", "cp1")))] == \
                status.units[0].current_a[2]
            assert got[("powershare_unit_link_quality_ratio", (("unit", "cp2"),))] == 0
            assert got[("powershare_unit_availability", (("availability", "unavailable"), ("unit", "cp2")))] == 1
            assert got[("powershare_unit_availability", (("availability", "available"), ("unit", "cp1")))] == 1
            assert got[("powershare_follower_errors_total", (("transport", "modbus"), ("unit", "cp2")))] >= 1
            assert ("powershare_follower_errors_total", (("transport", "modbus"), ("unit", "cp1"))) not in got
            assert got[("powershare_control_step_duration_seconds_count", ())] >= 1
            assert got[("powershare_control_step_duration_seconds_bucket", (("le", "+Inf"),))] == \
                got[("powershare_control_step_duration_seconds_count", ())]
            assert got[("powershare_invariant_violations_total", ())] == 0
            assert ("powershare_ocpp_outbox_messages", ()) in got
            assert ("powershare_unit_energy_watthours_total", (("unit", "cp1"),)) in got
            if (promtool := shutil.which("promtool")) is not None:
                checked = await asyncio.to_thread(subprocess.run, [promtool, "check", "metrics"],
                                                  input=response.text, text=True, capture_output=True, timeout=30)
                assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        await sim.stop()


@pytest.mark.parametrize("access", ["password"])
async def test_metrics_follow_the_read_access_of_the_status(tmp_path: Path, access: str) -> None:
    site, _ = parse_site({"installation_limit_a": 40, "network_limit_a": 20}, "site.yaml", REGISTRY.nameplate_a)
    app = GatewayApp.build(site, REGISTRY, state_dir=tmp_path, extra_faces=[
        web_face(tmp_path, config=WebConfig(host="127.0.0.1", port=0, read_access=access))])
    async with app, httpx.AsyncClient() as http:
        web = next(f for f in app.faces if isinstance(f, WebFace))
        assert (await http.get(web.server.url + "metrics")).status_code == 401
