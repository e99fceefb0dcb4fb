"""The commissioning API over a real loopback HTTP server, with the real supervisor and simulated Modbus chargers.

Every item the installer sets (installation limit, circuits, a unit's breaker, phases, rotation and circuit, the site
meter, the BMS face and its watchdog, the central system) is checked three ways: a valid change is applied (at the
next control step where the controller takes it, "saved; applies when the gateway restarts" where it cannot) and
persisted; an invalid one is refused with the rule's words and the request field, and nothing changes, neither in
the gateway nor in the settings file. A restart keeps it: tests/integration/test_commissioning_restart.py.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.web import REGISTRY, WebRig, car, until, web_rig

from gateway.site.settings import KEY_FILE, SiteSettings
from gateway.site.store import JsonStore

KEY = "correct-horse-battery-key"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[WebRig]:
    async with web_rig(tmp_path, configured=2, units=4) as rig:
        yield rig


@pytest.fixture
async def auth(rig: WebRig) -> dict[str, str]:
    return await rig.sign_in()


def disk(rig: WebRig) -> bytes:
    path = rig.state / "settings.json"
    return path.read_bytes() if path.exists() else b""


def reloaded(rig: WebRig) -> SiteSettings:
    """The settings as the next start reads them from the state directory."""
    assert rig.supervisor.settings is not None
    base = rig.supervisor.settings._base  # the site file the rig started from
    return SiteSettings(base, REGISTRY.nameplate_a, JsonStore(rig.state / "settings.json"))


async def state(rig: WebRig) -> dict[str, Any]:
    response = await rig.client.get("/api/commissioning")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refused(rig: WebRig, response: httpx.Response, field: str | None, words: str,
                  before: tuple[Any, ...]) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    assert words in body["detail"], body["detail"]
    for raw in ("_a:", "circuits[", "chargers[", "Input should", "Value error"):
        assert raw not in body["detail"], f"the refusal speaks the site file's keys: {body['detail']}"
    assert await snapshot(rig) == before, "a refused change changed something"


async def snapshot(rig: WebRig) -> tuple[Any, ...]:
    settings = rig.supervisor.settings
    return settings.config, settings.saved, disk(rig), await state(rig)


def meter(port: int, **extra: Any) -> dict[str, Any]:
    return {"profile": "powershare-sim-meter", "transport": {"type": "tcp", "host": "127.0.0.1", "port": port},
            "limit_a": 63, "fallback_limit_a": 16, **extra}


# -- reading ------------------------------------------------------------------------------------------------------
async def test_the_commissioning_state_is_readable_and_names_what_was_added_here(rig: WebRig,
                                                                                 auth: dict[str, str]) -> None:
    added = await rig.client.post("/api/followers", json=rig.follower("bay-3", 3), headers=auth)
    assert added.status_code == 201, added.text
    body = await state(rig)
    assert body["installation_limit_a"] == 100 and body["network_limit_a"] == 32 and body["supply_phases"] == 3
    assert [(u["id"], u["added_here"], u["device"], u["nameplate_a"]) for u in body["units"]] == [
        ("cp1", False, "powershare-sim", 32), ("cp2", False, "powershare-sim", 32),
        ("bay-3", True, "powershare-sim", 32)]
    assert body["circuits"] == [] and body["meter"] is None and body["bms"] is None and body["ocpp"] is None
    assert body["restart_needed"] == [] and body["restart_available"] is False
    profiles = (await rig.client.get("/api/meter-profiles")).json()
    assert "powershare-sim-meter" in [p["name"] for p in profiles]


# -- installation limit ------------------------------------------------------------------------------------------
async def test_the_installation_limit_applies_at_the_next_step_and_is_persisted(rig: WebRig,
                                                                                auth: dict[str, str]) -> None:
    response = await rig.client.put("/api/installation-limit", json={"limit_a": 80}, headers=auth)
    assert response.status_code == 200 and response.json()["installation_limit_a"] == 80
    await until(lambda: rig.supervisor.status().installation_limit_a == 80)
    assert reloaded(rig).config.installation_limit_a == 80

    before = await snapshot(rig)
    await refused(rig, await rig.client.put("/api/installation-limit", json={"limit_a": 20}, headers=auth),
                  "limit_a", "Network limit: 32 A is above the installation limit 20 A", before)
    await refused(rig, await rig.client.put("/api/installation-limit", json={"limit_a": 20000}, headers=auth),
                  "limit_a", "The installation limit must be between 0 A and", before)
    await refused(rig, await rig.client.put("/api/installation-limit", json={"limit_a": 0}, headers=auth),
                  "confirm_zero", "0 A stops every car", before)


# -- circuits -------------------------------------------------------------------------------------------------------
async def test_a_circuit_limit_binds_at_the_next_control_step(rig: WebRig, auth: dict[str, str]) -> None:
    response = await rig.client.post("/api/circuits", json={"id": "board-1", "limit_a": 20}, headers=auth)
    assert response.status_code == 201, response.text
    for unit in ("cp1", "cp2"):
        wired = await rig.client.put(f"/api/units/{unit}/wiring", json={
            "breaker_limit_a": None, "phases": 3, "phase_rotation": "L1L2L3", "circuit": "board-1"}, headers=auth)
        assert wired.status_code == 200, wired.text
    assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)).status_code == 200
    rig.chargers[0].plug(car("a"))
    rig.chargers[1].plug(car("b"))

    def on_board() -> float:
        return sum(max(u.booked_a) for u in rig.supervisor.status().units[:2])

    await until(lambda: 19 <= on_board() <= 20.01, timeout_s=10)
    changed = await rig.client.put("/api/circuits/board-1", json={"id": "board-1", "limit_a": 12}, headers=auth)
    assert changed.status_code == 200, changed.text
    await until(lambda: on_board() <= 12.01, timeout_s=10)
    assert [(c["id"], c["limit_a"], c["units"]) for c in changed.json()["circuits"]] == [("board-1", 12, 2)]


async def test_circuits_are_added_renamed_and_removed_and_their_units_follow(rig: WebRig,
                                                                             auth: dict[str, str]) -> None:
    assert (await rig.client.post("/api/circuits", json={"id": "hall", "limit_a": 63}, headers=auth)).status_code \
        == 201
    assert (await rig.client.post("/api/circuits", json={"id": "bay", "parent": "hall", "limit_a": 32},
                                  headers=auth)).status_code == 201
    await rig.client.put("/api/units/cp2/wiring", json={"breaker_limit_a": 16, "phases": 3,
                                                        "phase_rotation": "L1L2L3", "circuit": "bay"}, headers=auth)
    renamed = await rig.client.put("/api/circuits/hall", json={"id": "hall-a", "limit_a": 50}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert [(c["id"], c["parent"]) for c in renamed.json()["circuits"]] == [("bay", "hall-a"), ("hall-a", "site")]
    await until(lambda: [c.id for c in rig.supervisor.settings.config.circuits] == ["bay", "hall-a"])
    assert [(c.id, c.parent, c.limit_a) for c in reloaded(rig).config.circuits] == [
        ("bay", "hall-a", 32), ("hall-a", "site", 50)]

    before = await snapshot(rig)
    await refused(rig, await rig.client.delete("/api/circuits/bay", headers=auth), "circuit_id",
                  "circuit bay still feeds unit cp2: move them to another circuit first", before)
    await refused(rig, await rig.client.delete("/api/circuits/hall-a", headers=auth), "circuit_id",
                  "still feeds circuit bay", before)
    await refused(rig, await rig.client.post("/api/circuits", json={"id": "bay", "limit_a": 10}, headers=auth),
                  "id", "a circuit 'bay' is already on this site", before)
    await refused(rig, await rig.client.put("/api/circuits/hall-a", json={"id": "hall-a", "parent": "bay",
                                                                          "limit_a": 50}, headers=auth),
                  "parent", "hall-a, parent circuit: circuit 'hall-a' is part of a loop", before)
    await refused(rig, await rig.client.post("/api/circuits", json={"id": "x y", "limit_a": 10}, headers=auth),
                  "id", "The name may hold only letters", before)
    await refused(rig, await rig.client.post("/api/circuits", json={"id": "x", "limit_a": 0}, headers=auth),
                  "confirm_zero", "0 A stops every car on x", before)

    await rig.client.put("/api/units/cp2/wiring", json={"breaker_limit_a": 16, "phases": 3,
                                                        "phase_rotation": "L1L2L3", "circuit": "site"}, headers=auth)
    assert (await rig.client.delete("/api/circuits/bay", headers=auth)).status_code == 200
    assert [c.id for c in reloaded(rig).config.circuits] == ["hall-a"]


# -- a unit's breaker, phases, rotation, circuit ----------------------------------------------------------------
async def test_a_units_breaker_and_rotation_apply_at_the_next_step(rig: WebRig, auth: dict[str, str]) -> None:
    wiring = {"breaker_limit_a": 10, "phases": 1, "phase_rotation": "L3", "circuit": "site"}
    response = await rig.client.put("/api/units/cp1/wiring", json=wiring, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["units"][0] == {"id": "cp1", "device": "powershare-sim", "nameplate_a": 32,
                                           "added_here": False, **wiring}
    await until(lambda: rig.supervisor.status().units[0].limit_a == 10)
    assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)).status_code == 200
    rig.chargers[0].plug(car("a"))
    await until(lambda: rig.supervisor.status().units[0].booked_a[2] > 5, timeout_s=10)
    status = rig.supervisor.status().units[0]
    assert status.booked_a[0] == status.booked_a[1] == 0 and status.booked_a[2] <= 10, status.booked_a
    cp1 = reloaded(rig).config.chargers[0]
    assert (cp1.breaker_limit_a, cp1.phases, cp1.phase_rotation) == (10, 1, "L3")


@pytest.mark.parametrize(("wiring", "field", "words"), [
    ({"breaker_limit_a": 40}, "breaker_limit_a", "cp2, breaker limit: 40 A is above the unit's nameplate 32 A"),
    ({"breaker_limit_a": 4}, "breaker_limit_a", "below 6 A no vehicle can charge"),
    ({"phase_rotation": "L1L1L2"}, "phase_rotation", "cp2, phase rotation: must be a permutation"),
    ({"phase_rotation": "L2"}, "phase_rotation", "a 3-phase charger needs all three phases named"),
    ({"circuit": "attic"}, "circuit", "cp2, circuit: unknown circuit 'attic'"),
    ({"phases": 2}, "phases", "The phases wired must be one of 1 or 3"),
    ({"breaker_limit_a": "16"}, "breaker_limit_a", "The breaker limit must be a number"),
])
async def test_a_wiring_that_breaks_a_rule_is_refused(rig: WebRig, auth: dict[str, str], wiring: dict[str, Any],
                                                      field: str, words: str) -> None:
    before = await snapshot(rig)
    body = {"breaker_limit_a": None, "phases": 3, "phase_rotation": "L1L2L3", "circuit": "site", **wiring}
    await refused(rig, await rig.client.put("/api/units/cp2/wiring", json=body, headers=auth), field, words, before)


async def test_a_follower_added_here_is_rewired_in_its_own_entry(rig: WebRig, auth: dict[str, str]) -> None:
    assert (await rig.client.post("/api/followers", json=rig.follower("bay-3", 3), headers=auth)).status_code == 201
    response = await rig.client.put("/api/units/bay-3/wiring", json={
        "breaker_limit_a": 20, "phases": 3, "phase_rotation": "L3L1L2", "circuit": "site"}, headers=auth)
    assert response.status_code == 200, response.text
    bay = reloaded(rig).config.chargers[2]
    assert (bay.id, bay.breaker_limit_a, bay.phase_rotation) == ("bay-3", 20, "L3L1L2")
    await refused(rig, await rig.client.put("/api/units/nope/wiring", json={
        "breaker_limit_a": None, "phases": 3, "phase_rotation": "L1L2L3", "circuit": "site"}, headers=auth),
        "charger_id", "no charger 'nope'", await snapshot(rig))


# -- the site meter ------------------------------------------------------------------------------------------------
async def test_a_site_meter_is_saved_for_the_restart_and_checked_like_the_site_file(rig: WebRig,
                                                                                    auth: dict[str, str]) -> None:
    before = await snapshot(rig)
    await refused(rig, await rig.client.put("/api/meter", json=meter(rig.modbus_port, fallback_limit_a=80),
                                            headers=auth),
                  "fallback_limit_a", "Site meter, fallback limit: 80 A is above the metered node's limit 63 A",
                  before)
    await refused(rig, await rig.client.put("/api/meter", json=meter(rig.modbus_port, profile="powershare-sim"),
                                            headers=auth),
                  "profile", "is a charger profile; the meter needs a meter profile", before)
    await refused(rig, await rig.client.put("/api/meter", json=meter(rig.modbus_port, profile="eastron-sdm630"),
                                            headers=auth),
                  "transport.type", "supports rtu, rtu-over-tcp, not tcp", before)
    await refused(rig, await rig.client.put("/api/meter", json=meter(rig.modbus_port, circuit="attic"),
                                            headers=auth), "circuit", "Site meter, circuit: unknown circuit", before)
    await refused(rig, await rig.client.put("/api/meter", json=meter(rig.modbus_port, margin_a=-1), headers=auth),
                  "margin_a", "The margin must be at least 0", before)

    response = await rig.client.put("/api/meter", json=meter(rig.modbus_port), headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["restart_needed"] == ["meter"] and response.json()["meter"]["limit_a"] == 63
    assert rig.supervisor.settings.config.meter is None, "a new device waits for the restart"
    assert reloaded(rig).config.meter is not None
    events = [e.text for e in rig.supervisor.recent_events()]
    assert any("site meter" in e and "applies when the gateway restarts" in e for e in events), events
    removed = await rig.client.delete("/api/meter", headers=auth)
    assert removed.json()["meter"] is None and removed.json()["restart_needed"] == []
    assert reloaded(rig).config.meter is None


# -- the BMS face and its watchdog ----------------------------------------------------------------------------------
async def test_the_bms_face_is_saved_for_the_restart_its_watchdog_applies_at_once(rig: WebRig,
                                                                                 auth: dict[str, str]) -> None:
    bms = {"enabled": True, "host": "127.0.0.1", "port": 1502, "unit_id": 7, "read_only": False,
           "allow_write_from": ["10.0.8.21", "10.0.9.0/24"]}
    response = await rig.client.put("/api/bms", json=bms, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["bms"] == {**bms, "allow_write_from": ["10.0.8.21/32", "10.0.9.0/24"], "rtu": None}
    assert response.json()["restart_needed"] == ["bms"]
    saved = reloaded(rig).config.bms
    assert saved is not None and saved.unit_id == 7 and saved.port == 1502

    before = await snapshot(rig)
    await refused(rig, await rig.client.put("/api/bms", json={**bms, "unit_id": 0}, headers=auth), "unit_id",
                  "The unit id must be at least 1", before)
    await refused(rig, await rig.client.put("/api/bms", json={**bms, "allow_write_from": ["the office"]},
                                            headers=auth), "allow_write_from.0",
                  "The addresses allowed to write: value is not a valid IPv4 or IPv6 network", before)

    watchdog = await rig.client.put("/api/bms/watchdog", json={"timeout_s": 30, "fallback_limit_a": 12},
                                    headers=auth)
    assert watchdog.status_code == 200, watchdog.text
    assert rig.supervisor.status().bms_watchdog_s == 30 and rig.supervisor.status().bms_fallback_limit_a == 12
    before = await snapshot(rig)
    await refused(rig, await rig.client.put("/api/bms/watchdog", json={"timeout_s": 10, "fallback_limit_a": 150},
                                            headers=auth),
                  "limit_a", "The BMS fallback limit must be between 0 A and the installation limit (100 A)", before)
    assert rig.supervisor.status().bms_watchdog_s == 30, "the watchdog is not half-applied"
    await refused(rig, await rig.client.put("/api/bms/watchdog", json={"timeout_s": 70000, "fallback_limit_a": 10},
                                            headers=auth), "timeout_s", "The watchdog must be at most 65535", before)


# -- the central system ---------------------------------------------------------------------------------------------
async def test_the_central_system_is_saved_for_the_restart_and_its_key_never_shown(rig: WebRig,
                                                                                  auth: dict[str, str]) -> None:
    section = {"url": "ws://127.0.0.1:9/ocpp", "charge_point_id": "car-park-b", "security_profile": 1}
    response = await rig.client.put("/api/ocpp", json={**section, "password": KEY}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ocpp"]["key"] == "here" and body["restart_needed"] == ["ocpp"]
    assert body["ocpp"]["settings"]["charge_point_id"] == "car-park-b"
    key_file = rig.state / KEY_FILE
    assert key_file.read_text().strip() == KEY and os.stat(key_file).st_mode & 0o077 == 0
    for path in ("/api/commissioning", "/api/site.yaml"):
        assert KEY not in (await rig.client.get(path)).text, path
    assert KEY not in disk(rig).decode()

    kept = await rig.client.put("/api/ocpp", json={**section, "charge_point_id": "car-park-c"}, headers=auth)
    assert kept.status_code == 200, kept.text
    assert kept.json()["ocpp"]["key"] == "here" and key_file.read_text().strip() == KEY, "an empty key keeps it"
    ocpp = reloaded(rig).config.ocpp
    assert ocpp is not None and ocpp.charge_point_id == "car-park-c" and ocpp.password_file == key_file

    before = await snapshot(rig)
    await refused(rig, await rig.client.put("/api/ocpp", json={**section, "security_profile": 2}, headers=auth),
                  None, "Security profile 2 needs a wss:// url", before)
    await refused(rig, await rig.client.put("/api/ocpp", json={**section, "url": "http://cs"}, headers=auth),
                  "url", "The central system's address must start with ws:// or wss://", before)
    await refused(rig, await rig.client.put("/api/ocpp", json={**section, "password": "short"}, headers=auth),
                  None, "must be 16 to 40 characters", before)
    assert key_file.read_text().strip() == KEY

    removed = await rig.client.delete("/api/ocpp", headers=auth)
    assert removed.json()["ocpp"] is None and not key_file.exists()


# -- restart, sessions, export ------------------------------------------------------------------------------------
async def test_writes_need_a_session_and_a_gateway_not_run_by_run_cannot_restart(rig: WebRig,
                                                                                auth: dict[str, str]) -> None:
    for method, path in (("PUT", "/api/installation-limit"), ("POST", "/api/circuits"), ("PUT", "/api/meter"),
                         ("PUT", "/api/bms"), ("PUT", "/api/ocpp"), ("POST", "/api/restart")):
        response = await rig.client.request(method, path, json={})
        assert response.status_code == 401, (path, response.text)
    response = await rig.client.post("/api/restart", headers=auth)
    assert response.status_code == 409 and "cannot restart itself" in response.json()["detail"]


async def test_the_export_holds_every_commissioning_change(rig: WebRig, auth: dict[str, str], tmp_path: Path) -> None:
    await rig.client.put("/api/installation-limit", json={"limit_a": 90}, headers=auth)
    await rig.client.post("/api/circuits", json={"id": "hall", "limit_a": 63}, headers=auth)
    await rig.client.put("/api/units/cp1/wiring", json={"breaker_limit_a": 16, "phases": 3,
                                                        "phase_rotation": "L2L3L1", "circuit": "hall"}, headers=auth)
    await rig.client.put("/api/meter", json=meter(rig.modbus_port), headers=auth)
    text = (await rig.client.get("/api/site.yaml")).text
    for words in ("installation_limit_a: 90", "id: hall", "phase_rotation: L2L3L1", "powershare-sim-meter"):
        assert words in text, words
