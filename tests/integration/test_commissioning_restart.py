"""What the installer set on the page through a restart, and back out as a site file.

The gateway runs as ``powershare run`` runs it (``serve_site_file``: a site file on disk, a state directory). A
restart asked for on the page keeps every change and puts the saved BMS face, central system and meter in force;
a restart the next start would not honour is refused and the gateway keeps running. ``check-config --state-dir``
sees followers added on the page (they used to live only in the state directory, unseen), and ``export-site``
writes the one file that ``GET /api/site.yaml`` serves, which ``check-config`` accepts and ``run`` starts with
identically.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.gateway_run import RunRig, gateway_on, running_gateway
from support.web import free_port

from gateway.cli.main import main

KEY = "correct-horse-battery-key"


def without_instance(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "instance"}


def the_site(state: dict[str, Any]) -> dict[str, Any]:
    """The commissioning state without what says how it got there (added here, waiting for a restart)."""
    units = [{k: v for k, v in u.items() if k != "added_here"} for u in state["units"]]
    return {**{k: v for k, v in state.items() if k not in ("instance", "restart_needed")}, "units": units}


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def commission(rig: RunRig, headers: dict[str, str], bms_port: int) -> None:
    """Everything the installer sets, through the API."""
    closed = free_port()
    for method, path, body in (
            ("PUT", "/api/installation-limit", {"limit_a": 80}),
            ("POST", "/api/circuits", {"id": "hall", "limit_a": 63}),
            ("PUT", "/api/units/cp1/wiring", {"breaker_limit_a": 16, "phases": 3, "phase_rotation": "L2L3L1",
                                              "circuit": "hall"}),
            ("POST", "/api/followers", {"id": "bay-3", "profile": "powershare-sim", "comm_timeout_s": 5,
                                        "transport": {"type": "tcp", "host": "127.0.0.1", "port": rig.modbus_port,
                                                      "unit": 3, "timeout_s": 0.3}}),
            ("PUT", "/api/units/bay-3/wiring", {"breaker_limit_a": 20, "phases": 1, "phase_rotation": "L2",
                                                "circuit": "hall"}),
            ("PUT", "/api/meter", {"profile": "powershare-sim-meter", "limit_a": 63, "fallback_limit_a": 16,
                                   "transport": {"type": "tcp", "host": "127.0.0.1", "port": closed}}),
            ("PUT", "/api/bms", {"host": "127.0.0.1", "port": bms_port, "unit_id": 3}),
            ("PUT", "/api/bms/watchdog", {"timeout_s": 60, "fallback_limit_a": 20}),
            ("PUT", "/api/ocpp", {"url": f"ws://127.0.0.1:{closed}/ocpp", "charge_point_id": "car-park-b",
                                  "security_profile": 1, "password": KEY})):
        response = await rig.client.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), (path, response.text)


async def test_a_restart_from_the_page_keeps_every_change_and_puts_the_saved_ones_in_force(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as rig:
        headers = await rig.sign_in()
        bms_port = free_port()
        await commission(rig, headers, bms_port)
        before = await rig.commissioning()
        assert before["restart_needed"] == ["meter", "bms", "ocpp"] and before["restart_available"]
        assert not await listening(bms_port), "the BMS face waits for the restart"

        after = await rig.restarted(headers)
        assert after["restart_needed"] == []
        assert without_instance(after) == {**without_instance(before), "restart_needed": []}
        assert await listening(bms_port), "the saved BMS face is in force"
        status = (await rig.client.get("/api/status")).json()
        assert status["limit"]["installation_limit_a"] == 80 and status["limit"]["bms_watchdog_s"] == 60
        assert [u["id"] for u in status["units"]] == ["cp1", "cp2", "bay-3"]
        assert [u["limit_a"] for u in status["units"]] == [16, 32, 20]
        stale = await rig.client.put("/api/installation-limit", json={"limit_a": 90}, headers=headers)
        assert stale.status_code == 401, "sessions end with the restart: sign in again"
        headers = await rig.sign_in()
        assert (await rig.client.put("/api/installation-limit", json={"limit_a": 90},
                                     headers=headers)).status_code == 200


async def test_the_silent_meter_saved_before_the_restart_governs_after_it(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as rig:
        headers = await rig.sign_in()
        meter = {"profile": "powershare-sim-meter", "limit_a": 63, "fallback_limit_a": 16,
                 "transport": {"type": "tcp", "host": "127.0.0.1", "port": free_port()}}
        assert (await rig.client.put("/api/meter", json=meter, headers=headers)).status_code == 200
        assert (await rig.client.get("/api/limit")).json()["source"] == "network"
        await rig.restarted(headers)
        async with asyncio.timeout(15):
            while True:
                limit = (await rig.client.get("/api/limit")).json()
                if limit["source"] == "site_meter":
                    break
                await asyncio.sleep(0.2)
        assert limit["effective_limit_a"] == [16, 16, 16], "nothing from the meter: its fallback limit"


async def test_a_restart_the_next_start_would_not_honour_is_refused(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, extra={"circuits": [{"id": "east", "limit_a": 63}]}) as rig:
        headers = await rig.sign_in()
        response = await rig.client.post("/api/circuits", json={"id": "bay", "parent": "east", "limit_a": 32},
                                         headers=headers)
        assert response.status_code == 201, response.text
        document = yaml.safe_load(rig.path.read_text())
        rig.path.write_text(yaml.safe_dump({**document, "circuits": []}))  # the page's bay hangs on east
        refused = await rig.client.post("/api/restart", headers=headers)
        assert refused.status_code == 422 and "would not use the settings made here" in refused.json()["detail"]

        rig.path.write_text(yaml.safe_dump({**document, "installation_limit_a": -5}))
        refused = await rig.client.post("/api/restart", headers=headers)
        assert refused.status_code == 422 and "no longer passes check-config" in refused.json()["detail"]
        assert "installation_limit_a" in refused.json()["detail"]
        await asyncio.sleep(0.5)
        assert not rig.task.done() and (await rig.client.get("/api/status")).status_code == 200


async def test_followers_added_on_the_page_are_seen_by_check_config_and_exported_as_one_site_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: followers added on the page lived only in the state directory, unseen by check-config."""
    async with running_gateway(tmp_path) as rig:
        headers = await rig.sign_in()
        await commission(rig, headers, free_port())
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["check-config", str(rig.path), "--state-dir", str(rig.state)]) == 0
        out = capsys.readouterr().out
        assert "chargers: 3" in out and "  bay-3: powershare-sim via tcp" in out, out
        for change in ("follower bay-3 added (powershare-sim)", "circuit hall added: limit 63 A, below site",
                       "installation_limit_a: 80 A (the file says 100 A)", "meter: set at run time"):
            assert f"  - {change}" in out, out
        assert KEY not in out

        exported = tmp_path / "exported.yaml"
        assert await asyncio.to_thread(main, ["export-site", "--config", str(rig.path), "--state-dir",
                                              str(rig.state), "--output", str(exported)]) == 0
        served = (await rig.client.get("/api/site.yaml")).text
        assert exported.read_text() == served, "the page and the CLI export the same file"
        assert KEY not in served
        assert await asyncio.to_thread(main, ["check-config", str(exported)]) == 0
        before = await rig.commissioning()
        web_port = yaml.safe_load(exported.read_text())["web"]["port"]

        rig.stop.set()
        assert await rig.task == 0
        async with gateway_on(exported, rig.state, web_port, rig.line) as again:
            state = await again.commissioning()
            assert the_site(state) == the_site(before) and state["restart_needed"] == []
            assert [u["added_here"] for u in state["units"]] == [False, False, False], "now in the site file"
            assert (await again.client.get("/api/site.yaml")).text == served
        fresh = tmp_path / "fresh-state"
        async with gateway_on(exported, fresh, web_port, rig.line) as fresh_start:
            state = await fresh_start.commissioning()
            runtime = ("bms_watchdog_s", "bms_fallback_limit_a")  # state-directory settings, not site-file ones
            assert {k: v for k, v in the_site(state).items() if k not in runtime} == \
                {k: v for k, v in the_site(before).items() if k not in runtime}, "the file alone is the same site"


def test_check_config_says_when_the_settings_would_be_set_aside(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"installation_limit_a": 32, "network_limit_a": 32}))
    state = tmp_path / "state"
    state.mkdir()
    (state / "settings.json").write_text('{"version": 1, "values": {"circuits.bay": {"value": {"id": "bay", '
                                         '"parent": "east", "limit_a": 16}, "file": null}}}')
    assert main(["check-config", str(site), "--state-dir", str(state)]) == 0
    captured = capsys.readouterr()
    assert "do not fit the site file any more" in captured.err and "unknown circuit 'east'" in captured.err
    assert (state / "settings.json").exists(), "check-config only reads the state directory"
    (state / "settings.json").write_text("{ truncated")
    assert main(["check-config", str(site), "--state-dir", str(state)]) == 0
    assert "is unreadable" in capsys.readouterr().err
    assert (state / "settings.json").read_text() == "{ truncated"


def test_the_service_checks_the_site_as_it_will_run(tmp_path: Path) -> None:
    unit = (Path(__file__).parents[2] / "deploy" / "powershare.service").read_text()
    pre = next(line for line in unit.splitlines() if line.startswith("ExecStartPre="))
    assert "check-config /etc/powershare/site.yaml --state-dir %S/powershare" in pre
    assert "StateDirectory=powershare" in unit
