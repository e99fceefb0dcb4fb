"""The OCPP client joins ``powershare run`` (a site file with ``ocpp:``) and ``powershare demo --ocpp-url``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from support.certs import self_signed
from support.ocpp_rig import REGISTRY, until

from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.cli.main import main
from gateway.cli.run import EXIT_FAILED, EXIT_OK, serve
from gateway.demo.site import Demo, DemoOptions
from gateway.faces.ocpp.face import ocpp_face
from gateway.sim.csms import CentralSystem
from gateway.site.config import parse_site


async def test_the_demo_with_an_ocpp_central_system(tmp_path: Path) -> None:
    async with CentralSystem(port=0) as csms:
        options = ocpp_options_for(csms.url(), "DEMO-1")
        demo = Demo(DemoOptions(chargers=3, limit_a=30, duration_s=2.5, bms_port=0),
                    extra_faces=[ocpp_face(options, tmp_path)])
        summary = await demo.run(asyncio.Event(), lambda frame: None, 0.5)
    assert summary["over_limit_amp_seconds"] == 0
    actions = [r.action for r in csms.received if r.charge_point == "DEMO-1"]
    assert actions[0] == "BootNotification" and "StartTransaction" in actions
    connectors = {r.payload["connectorId"] for r in csms.received if r.action == "StatusNotification"}
    assert connectors == {0, 1, 2, 3}


def ocpp_options_for(url: str, charge_point_id: str) -> object:
    from gateway.cli.demo import ocpp_options
    options = ocpp_options(url, charge_point_id)
    assert options is not None
    return options


def test_demo_refuses_a_bad_ocpp_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--ocpp-url", "http://cs.example.com", "--duration", "1", "--bms-port", "0"]) == 2
    assert "--ocpp-url" in capsys.readouterr().err


async def test_run_starts_the_ocpp_client_when_the_site_file_has_ocpp(tmp_path: Path) -> None:
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 3))
    await site.start()
    try:
        assert line.server is not None
        async with CentralSystem(port=0) as csms:
            config, _ = parse_site(site_file(line.server.port, {"url": csms.url(), "charge_point_id": "RUN-1"}),
                                   "site.yaml", REGISTRY.nameplate_a)
            stop = asyncio.Event()  # what SIGTERM sets (tests/e2e/test_run_command.py sends the real signal)
            task = asyncio.create_task(serve(config, REGISTRY, tmp_path, stop=stop))
            try:
                async with asyncio.timeout(5):
                    await csms.wait_for("StatusNotification", where=lambda p: p["connectorId"] == 2)
            finally:
                stop.set()
                assert await task == EXIT_OK
        assert (tmp_path / "ocpp" / "charge-point.db").exists()
    finally:
        await site.stop()


async def test_run_refuses_to_start_without_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway")
    ocpp = {"url": "ws://127.0.0.1:1", "charge_point_id": "RUN-1", "security_profile": 1,
            "password_env": "POWERSHARE_TEST_NO_SUCH_VARIABLE"}
    config, _ = parse_site(site_file(1, ocpp), "site.yaml", REGISTRY.nameplate_a)
    assert await serve(config, REGISTRY, tmp_path) == EXIT_FAILED
    await until(lambda: "POWERSHARE_TEST_NO_SUCH_VARIABLE" in caplog.text)


def site_file(port: int, ocpp: dict[str, object]) -> dict[str, object]:
    return {"installation_limit_a": 63, "network_limit_a": 32, "enabled": True, "control": {"tick_s": 0.2},
            "web": {"port": 0, "host": "127.0.0.1"},
            "chargers": [{"id": f"cp{i}", "profile": "powershare-sim",
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i}}
                         for i in (1, 2)],
            "ocpp": ocpp}


async def test_key_and_certificate_files_are_found_next_to_the_site_file_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A service runs with "/" as its working directory. The central system's key file and the page's certificate,
    # named relative to the site file as its other paths are, were looked for there and the gateway did not start.
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "ocpp-key").write_text("an-authorization-key-for-run\n", encoding="utf-8")
    self_signed(etc)
    elsewhere = tmp_path / "working-directory"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 3))
    await site.start()
    try:
        assert line.server is not None
        async with CentralSystem(port=0, password="an-authorization-key-for-run") as csms:
            document = site_file(line.server.port, {"url": csms.url(), "charge_point_id": "RUN-1",
                                                    "security_profile": 1, "password_file": "ocpp-key"})
            document["web"] = {"port": 0, "host": "127.0.0.1", "tls_cert": "cert.pem", "tls_key": "key.pem"}
            config, _ = parse_site(document, str(etc / "site.yaml"), REGISTRY.nameplate_a)
            stop = asyncio.Event()
            task = asyncio.create_task(serve(config, REGISTRY, tmp_path / "state", base_dir=etc, stop=stop))
            try:
                async with asyncio.timeout(5):
                    await csms.wait_for("BootNotification")
            finally:
                stop.set()
                assert await task == EXIT_OK
    finally:
        await site.stop()
