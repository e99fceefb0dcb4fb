"""The web API over a real loopback HTTP server, with the real supervisor and simulated Modbus chargers.

Every write is checked three ways: it works, it is refused (422 and the field) when a commissioning rule says no,
and a refusal changes nothing, neither in the gateway's status nor in the persisted settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.web import REGISTRY, WebRig, car, free_port, until, web_rig

from drivers.sim.faults import Fault, FaultKind
from gateway.faces.web.auth import PASSWORD_FILE
from gateway.site.config import load_site, parse_site
from gateway.site.export import export_site


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[WebRig]:
    async with web_rig(tmp_path) as rig:
        yield rig


@pytest.fixture
async def auth(rig: WebRig) -> dict[str, str]:
    return await rig.sign_in()


def settings_file(rig: WebRig) -> str:
    path = rig.state / "settings.json"
    return path.read_text() if path.exists() else ""


async def refused(rig: WebRig, response: httpx.Response, field: str | None, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    assert body["detail"]
    return body


# -- reads ------------------------------------------------------------------------------------------------------
async def test_status_units_limit_and_profiles_are_readable_without_a_password(rig: WebRig) -> None:
    status = (await rig.client.get("/api/status")).json()
    assert status["name"] == "car park B" and status["enabled"] is False
    assert status["limit"] == {"effective_limit_a": [32, 32, 32], "source": "network", "installation_limit_a": 100,
                               "network_limit_a": 32, "bms_watchdog_s": 0, "bms_fallback_limit_a": 0}
    assert [u["id"] for u in status["units"]] == ["cp1", "cp2"]
    assert status["invariant_violations"] == 0 and status["booked_excess_a"] == 0
    await until(lambda: all(u.link.success_rate == 1 for u in rig.supervisor.status().units))
    unit = (await rig.client.get("/api/units/cp2")).json()
    assert unit["state"] == "A" and unit["state_text"] == "no car" and unit["availability"] == "disabled"
    assert unit["link"]["success_rate"] == 1 and unit["link"]["latency_ms"] > 0 and unit["max_current_a"] == 32
    assert [u["id"] for u in (await rig.client.get("/api/units")).json()] == ["cp1", "cp2"]
    missing = await rig.client.get("/api/units/cp9")
    await refused(rig, missing, "unit_id", status=404)
    assert (await rig.client.get("/api/limit")).json()["source"] == "network"
    profiles = {p["name"]: p for p in (await rig.client.get("/api/profiles")).json()}
    assert profiles["powershare-sim"]["nameplate_a"] == 32 and profiles["keba-p40"]["default_unit_id"] == 255
    assert not any(name.startswith("powershare-sim-meter") for name in profiles), "meters are not followers"
    followers = (await rig.client.get("/api/followers")).json()
    assert [(f["id"], f["transport"]["unit"]) for f in followers] == [("cp1", 1), ("cp2", 2)]
    for _ in range(50):  # the live chart takes a point a second
        history = (await rig.client.get("/api/history")).json()
        if history:
            break
        await asyncio.sleep(0.1)
    assert history[-1]["limit_a"] == [32, 32, 32]


async def test_an_unavailable_unit_shows_why_and_its_link_quality(rig: WebRig) -> None:
    assert rig.line.server is not None
    rig.line.server.set_fault(2, Fault(FaultKind.SILENT))
    await until(lambda: rig.supervisor.status().units[1].unavailable_reason == "timeout")
    unit = (await rig.client.get("/api/units/cp2")).json()
    assert unit["availability"] == "unavailable" and unit["unavailable_reason"] == "timeout"
    assert unit["link"]["success_rate"] < 1
    status = (await rig.client.get("/api/status")).json()
    assert status["health"] == "degraded" and status["online"] == 1


async def test_the_page_and_offline_api_docs_are_served(rig: WebRig) -> None:
    page = await rig.client.get("/")
    assert page.status_code == 200 and "Power Sharing" in page.text and "Add followers" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css", "/static/history.js", "/static/history.css",
                  "/static/favicon.svg"):
        assert (await rig.client.get(asset)).status_code == 200, asset
    docs = await rig.client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert (await rig.client.get("/static-offline-docs/swagger-ui-bundle.js")).status_code == 200
    schema = (await rig.client.get("/openapi.json")).json()
    assert {"/api/status", "/api/followers", "/api/network-limit", "/api/enabled"} <= set(schema["paths"])


async def test_live_stream_sends_the_status_at_once_and_then_each_change(rig: WebRig, auth: dict[str, str]) -> None:
    seen: list[tuple[str, Any]] = []
    async with rig.client.stream("GET", "/api/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                seen.append((event, json.loads(line[6:])))
                if len(seen) == 2:
                    await rig.client.put("/api/network-limit", json={"limit_a": 20}, headers=auth)
                if any(e == "status" and d["limit"]["network_limit_a"] == 20 for e, d in seen) and \
                        any(e == "events" and d and d[-1]["text"] == "network limit 20 A" for e, d in seen):
                    break
    assert seen[0][0] == "status" and seen[0][1]["limit"]["network_limit_a"] == 32


async def test_stopping_the_server_ends_open_streams(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        async with rig.client.stream("GET", "/api/stream") as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("event: status")
            await rig.web.stop()
            rest = [line async for line in lines]
        assert len(rest) < 20  # the stream ended instead of hanging until the client's timeout


# -- authentication ---------------------------------------------------------------------------------------------
async def test_writes_need_a_session_and_a_refused_write_changes_nothing(rig: WebRig) -> None:
    before = settings_file(rig)
    for method, path, body in [("PUT", "/api/network-limit", {"limit_a": 10}), ("PUT", "/api/enabled",
                               {"enabled": True}), ("PUT", "/api/units/cp1/limit", {"limit_a": 10}),
                               ("DELETE", "/api/followers/cp1", None), ("POST", "/api/followers",
                                                                        rig.follower("cp3", 3))]:
        response = await rig.client.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
    status = rig.supervisor.status()
    assert status.network_limit_a == 32 and not status.enabled and len(status.units) == 2
    assert settings_file(rig) == before


async def test_the_first_password_needs_the_logged_setup_code(rig: WebRig) -> None:
    code = rig.web.setup_code
    assert code is not None and len(code) == 14
    assert (await rig.client.get("/api/auth")).json() == {"password_set": False, "signed_in": False,
                                                          "read_access": "open", "csrf_token": None}
    wrong = await rig.client.post("/api/setup", json={"setup_code": "AAAA-AAAA-AAAA", "password": "long enough"})
    await refused(rig, wrong, None, status=401)
    assert not (rig.state / PASSWORD_FILE).exists()
    rig.auth_clock.advance(1.0)
    short = await rig.client.post("/api/setup", json={"setup_code": code, "password": "short"})
    await refused(rig, short, "password")
    early = await rig.client.post("/api/session", json={"password": "whatever1"})
    await refused(rig, early, None, status=409)
    ok = await rig.client.post("/api/setup", json={"setup_code": code.lower().replace("-", ""),
                                                   "password": "correct horse battery"})
    assert ok.status_code == 200 and rig.web.setup_code is None
    again = await rig.client.post("/api/setup", json={"setup_code": code, "password": "another password"})
    await refused(rig, again, None, status=409)


async def test_the_password_is_stored_as_a_salted_scrypt_hash(rig: WebRig) -> None:
    await rig.sign_in("correct horse battery")
    path = rig.state / PASSWORD_FILE
    record = json.loads(path.read_text())
    assert record["scheme"] == "scrypt" and record["n"] >= 2**14 and len(record["salt"]) >= 16
    assert "correct horse" not in path.read_text()
    assert os.stat(path).st_mode & 0o077 == 0, "readable by the owner only"


async def test_a_wrong_password_is_refused_and_delays_the_next_attempt(rig: WebRig) -> None:
    await rig.sign_in("correct horse battery")
    wrong = await rig.client.post("/api/session", json={"password": "wrong password"})
    await refused(rig, wrong, None, status=401)
    too_soon = await rig.client.post("/api/session", json={"password": "correct horse battery"})
    await refused(rig, too_soon, None, status=429)
    assert int(too_soon.headers["retry-after"]) >= 1
    rig.auth_clock.advance(1.0)
    await refused(rig, await rig.client.post("/api/session", json={"password": "wrong again"}), None, status=401)
    rig.auth_clock.advance(1.0)
    refusal = await rig.client.post("/api/session", json={"password": "x" * 9})
    assert refusal.status_code == 429, "2 s after two"
    rig.auth_clock.advance(0.7)
    late = (await refused(rig, await rig.client.post("/api/session", json={"password": "x" * 9}), None, 429))
    assert "try again in 1 second" in late["detail"], "0.3 s left is said as 1 second, never as 0 s"
    rig.auth_clock.advance(0.3)
    rig.auth_clock.advance(1.0)
    ok = await rig.client.post("/api/session", json={"password": "correct horse battery"})
    assert ok.status_code == 200 and ok.json()["token"]


async def test_cookie_writes_need_the_csrf_token_bearer_writes_do_not(rig: WebRig) -> None:
    await rig.sign_in()
    signed = await rig.client.post("/api/session", json={"password": "correct horse battery"})
    csrf = signed.json()["csrf_token"]
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert "samesite=strict" in signed.headers["set-cookie"].lower()
    forged = await rig.client.put("/api/network-limit", json={"limit_a": 10})
    await refused(rig, forged, None, status=403)
    assert rig.supervisor.status().network_limit_a == 32
    assert (await rig.client.get("/api/auth")).json()["csrf_token"] == csrf
    ok = await rig.client.put("/api/network-limit", json={"limit_a": 10}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["network_limit_a"] == 10
    token = signed.json()["token"]
    rig.client.cookies.clear()
    bearer = await rig.client.put("/api/network-limit", json={"limit_a": 12},
                                  headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200 and bearer.json()["effective_limit_a"] == [12, 12, 12]
    out = await rig.client.delete("/api/session", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    late = await rig.client.put("/api/network-limit", json={"limit_a": 14},
                                headers={"Authorization": f"Bearer {token}"})
    await refused(rig, late, None, status=401)


async def test_changing_the_password_ends_every_other_session(rig: WebRig) -> None:
    first = await rig.sign_in("correct horse battery")
    second = await rig.sign_in("correct horse battery")
    wrong = await rig.client.post("/api/password", headers=first,
                                  json={"current_password": "not it at all", "new_password": "battery staple 2"})
    await refused(rig, wrong, None, status=401)
    rig.auth_clock.advance(1.0)
    changed = await rig.client.post("/api/password", headers=first,
                                    json={"current_password": "correct horse battery",
                                          "new_password": "battery staple 2"})
    assert changed.status_code == 200
    stale = await rig.client.put("/api/enabled", json={"enabled": True}, headers=second)
    await refused(rig, stale, None, status=401)
    assert (await rig.client.post("/api/session", json={"password": "battery staple 2"})).status_code == 200


async def test_the_password_survives_a_restart_and_no_setup_code_is_made(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        await rig.sign_in("correct horse battery")
    async with web_rig(tmp_path) as rig:
        assert rig.web.setup_code is None
        assert (await rig.client.get("/api/auth")).json()["password_set"] is True
        await rig.sign_in("correct horse battery")


async def test_reads_can_require_the_password(tmp_path: Path) -> None:
    async with web_rig(tmp_path, web={"read_access": "password"}) as rig:
        for path in ("/api/status", "/api/units", "/api/events", "/api/profiles", "/api/stream"):
            assert (await rig.client.get(path)).status_code == 401, path
        assert (await rig.client.get("/api/auth")).status_code == 200
        assert (await rig.client.get("/")).status_code == 200, "the page itself (with its sign-in form) is open"
        auth = await rig.sign_in()
        assert (await rig.client.get("/api/status", headers=auth)).status_code == 200


# -- commissioning writes ---------------------------------------------------------------------------------------
async def test_network_limit_is_set_and_logged_with_who_set_it(rig: WebRig, auth: dict[str, str]) -> None:
    response = await rig.client.put("/api/network-limit", json={"limit_a": 20}, headers=auth)
    assert response.status_code == 200 and response.json()["effective_limit_a"] == [20, 20, 20]
    assert rig.supervisor.status().network_limit_a == 20
    events = (await rig.client.get("/api/events")).json()
    assert events[-1]["text"] == "network limit 20 A" and events[-1]["origin"] == "web installer@127.0.0.1"
    assert json.loads(settings_file(rig))["values"]["network_limit_a"]["value"] == 20


@pytest.mark.parametrize(("body", "field"), [
    ({"limit_a": 150}, "limit_a"),  # above the installation limit
    ({"limit_a": 80}, "limit_a"),  # above what the two chargers could ever draw (64 A)
    ({"limit_a": -1}, "limit_a"),
    ({"limit_a": "lots"}, "limit_a"),
    ({"limit": 10}, "limit_a"),
    ({"limit_a": 10, "extra": 1}, "extra"),
])
async def test_a_refused_network_limit_changes_nothing(rig: WebRig, auth: dict[str, str], body: dict[str, Any],
                                                       field: str) -> None:
    before = settings_file(rig)
    await refused(rig, await rig.client.put("/api/network-limit", json=body, headers=auth), field)
    assert rig.supervisor.status().network_limit_a == 32 and settings_file(rig) == before


@pytest.mark.parametrize("value", ["", None, "abc", "40", True])
async def test_an_empty_or_non_numeric_limit_is_refused_in_plain_words(rig: WebRig, auth: dict[str, str],
                                                                        value: Any) -> None:
    """An emptied field must never become 0 A (every car stops); the refusal is written for the installer."""
    before = settings_file(rig)
    for path in ("/api/network-limit", "/api/units/cp1/limit"):
        body = await refused(rig, await rig.client.put(path, json={"limit_a": value}, headers=auth), "limit_a")
        assert body["detail"] == "The limit must be a number", body
    missing = await refused(rig, await rig.client.put("/api/network-limit", json={}, headers=auth), "limit_a")
    assert missing["detail"] == "The limit is missing"
    status = rig.supervisor.status()
    assert status.network_limit_a == 32 and status.units[0].limit_a == 32 and settings_file(rig) == before


async def test_zero_amps_needs_an_explicit_confirmation(rig: WebRig, auth: dict[str, str]) -> None:
    before = settings_file(rig)
    unconfirmed = await rig.client.put("/api/network-limit", json={"limit_a": 0}, headers=auth)
    assert "0 A stops every car" in (await refused(rig, unconfirmed, "confirm_zero"))["detail"]
    unit = await rig.client.put("/api/units/cp1/limit", json={"limit_a": 0.0}, headers=auth)
    assert "0 A stops charging at cp1" in (await refused(rig, unit, "confirm_zero"))["detail"]
    assert rig.supervisor.status().network_limit_a == 32 and settings_file(rig) == before

    confirmed = await rig.client.put("/api/units/cp1/limit", json={"limit_a": 0, "confirm_zero": True}, headers=auth)
    assert confirmed.status_code == 200, confirmed.text
    confirmed = await rig.client.put("/api/network-limit", json={"limit_a": 0, "confirm_zero": True}, headers=auth)
    assert confirmed.status_code == 200 and confirmed.json()["effective_limit_a"] == [0, 0, 0]
    status = rig.supervisor.status()
    assert status.network_limit_a == 0 and status.units[0].limit_a == 0


async def test_a_refusal_names_the_setting_not_the_api_field(rig: WebRig, auth: dict[str, str]) -> None:
    above = await rig.client.put("/api/network-limit", json={"limit_a": 150}, headers=auth)
    detail = (await refused(rig, above, "limit_a"))["detail"]
    assert detail == "The network limit must be between 0 A and the installation limit (100 A); 150 A is not"
    rule = await rig.client.put("/api/network-limit", json={"limit_a": 80}, headers=auth)
    detail = (await refused(rig, rule, "limit_a"))["detail"]
    assert detail.startswith("Network limit: 80 A is above the sum of the chargers' limits"), detail
    unit = await rig.client.put("/api/units/cp1/limit", json={"limit_a": 40}, headers=auth)
    assert (await refused(rig, unit, "limit_a"))["detail"].startswith("The limit of cp1 must be between 0 A and")
    follower = rig.follower("bay-3", 3, breaker_limit_a=40)
    breaker = (await refused(rig, await rig.client.post("/api/followers", json=follower, headers=auth),
                             "breaker_limit_a"))["detail"]
    port = rig.follower("bay-3", 3)
    port["transport"]["port"] = "web"
    typo = (await refused(rig, await rig.client.post("/api/followers", json=port, headers=auth),
                          "transport.port"))["detail"]
    for text in (detail, breaker, typo):
        assert "_a" not in text and "chargers[" not in text and "Input should" not in text, text
    assert typo == "The port must be a whole number"


async def test_a_unit_that_stops_answering_is_counted_at_its_booked_current(rig: WebRig,
                                                                            auth: dict[str, str]) -> None:
    """Its car may still charge: the page must not show 0 A for it nor leave it out of "drawn now"."""
    assert rig.line.server is not None
    assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)).status_code == 200
    rig.chargers[0].plug(car("a"))
    await until(lambda: rig.supervisor.status().units[0].current_a[0] > 5, timeout_s=10)
    rig.line.server.set_fault(1, Fault(FaultKind.SILENT))
    await until(lambda: not rig.supervisor.status().units[0].answering, timeout_s=10)
    status = (await rig.client.get("/api/status")).json()
    unit = status["units"][0]
    assert unit["answering"] is False and unit["state_text"] == "not answering"
    assert min(unit["booked_a"]) > 5, unit
    assert status["drawn_a"][0] >= unit["booked_a"][0] > status["measured_a"][0] - 1e-9
    for _ in range(50):  # the chart's history takes a point a second
        if (await rig.client.get("/api/history")).json()[-1]["drawn_a"][0] >= unit["booked_a"][0] - 1e-9:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the chart's history never counted the silent unit")


async def test_a_unit_limit_is_set_and_refused_above_its_nameplate(rig: WebRig, auth: dict[str, str]) -> None:
    ok = await rig.client.put("/api/units/cp1/limit", json={"limit_a": 10}, headers=auth)
    assert ok.status_code == 200
    await until(lambda: rig.supervisor.status().units[0].limit_a == 10)
    before = settings_file(rig)
    await refused(rig, await rig.client.put("/api/units/cp1/limit", json={"limit_a": 40}, headers=auth), "limit_a")
    await refused(rig, await rig.client.put("/api/units/cp9/limit", json={"limit_a": 10}, headers=auth),
                  "charger_id")
    assert rig.supervisor.status().units[0].limit_a == 10 and settings_file(rig) == before


async def test_a_session_need_is_taken_logged_and_refused_when_it_makes_no_sense(rig: WebRig,
                                                                                 auth: dict[str, str]) -> None:
    departure = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    ok = await rig.client.put("/api/units/cp1/session-need", json={"departure": departure, "energy_kwh": 12.5},
                              headers=auth)
    assert ok.status_code == 200, ok.text
    events = (await rig.client.get("/api/events")).json()
    assert events[-1]["text"].startswith("unit cp1 session: departure") and "12.5 kWh" in events[-1]["text"]
    assert events[-1]["origin"] == "web installer@127.0.0.1"
    await until(lambda: rig.supervisor.status().units[0].energy_wanted_kwh == 12.5)
    unit = (await rig.client.get("/api/units/cp1")).json()
    assert unit["energy_wanted_kwh"] == 12.5
    assert unit["departure_s"] == datetime.fromisoformat(departure).timestamp()
    before = settings_file(rig)
    path = "/api/units/cp1/session-need"
    for body, field in [({"departure": "2026-12-05T06:00:00"}, "departure"),  # no time zone
                        ({"departure": "2020-01-01T06:00:00Z"}, "departure"),  # past
                        ({"energy_kwh": -1}, "energy_kwh"),
                        ({"energy_kwh": 5, "soc": 80}, "soc")]:
        await refused(rig, await rig.client.put(path, json=body, headers=auth), field)
    await refused(rig, await rig.client.put("/api/units/cp9/session-need", json={"energy_kwh": 5}, headers=auth),
                  "charger_id")
    assert (await rig.client.get("/api/events")).json()[-1] == events[-1] and settings_file(rig) == before
    assert (await rig.client.put(path, json={"energy_kwh": 5})).status_code == 401


async def test_enabling_sharing_lets_a_plugged_car_charge(rig: WebRig, auth: dict[str, str]) -> None:
    rig.chargers[0].plug(car("a"))
    await until(lambda: rig.supervisor.status().units[0].state is not None
                and rig.supervisor.status().units[0].state.plugged_in)
    assert rig.chargers[0].setpoint_a == 0, "sharing is off: no current"
    response = await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)
    assert response.status_code == 200
    await until(lambda: rig.chargers[0].setpoint_a > 0)
    unit = (await rig.client.get("/api/units/cp1")).json()
    await until(lambda: rig.supervisor.status().units[0].setpoint_a > 0)
    unit = (await rig.client.get("/api/units/cp1")).json()
    assert unit["setpoint_a"] == 32 and unit["availability"] == "available"
    await refused(rig, await rig.client.put("/api/enabled", json={"enabled": "maybe"}, headers=auth), "enabled")
    off = await rig.client.put("/api/enabled", json={"enabled": False}, headers=auth)
    assert off.status_code == 200
    await until(lambda: rig.chargers[0].setpoint_a == 0)


async def test_a_follower_is_added_after_a_live_probe(rig: WebRig, auth: dict[str, str]) -> None:
    response = await rig.client.post("/api/followers", json=rig.follower("bay-3", 3), headers=auth)
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["probe"]["state"] == "A" and added["probe"]["identity"]["serial"] == "SIM-0003"
    assert added["follower"]["transport"]["unit"] == 3
    await until(lambda: [u.id for u in rig.supervisor.status().units] == ["cp1", "cp2", "bay-3"])
    followers = (await rig.client.get("/api/followers")).json()
    assert followers[-1]["id"] == "bay-3"
    assert json.loads(settings_file(rig))["followers_added"][0]["id"] == "bay-3"


async def test_a_follower_that_does_not_answer_is_refused(rig: WebRig, auth: dict[str, str]) -> None:
    assert rig.line.server is not None
    before = settings_file(rig)
    body = rig.follower("ghost", 1)
    body["transport"]["port"] = free_port()
    response = await rig.client.post("/api/followers", json=body, headers=auth)
    detail = (await refused(rig, response, "transport"))["detail"]
    assert "no connection" in detail and "127.0.0.1" in detail
    absent = await rig.client.post("/api/followers", json=rig.follower("ghost", 9), headers=auth)
    detail = (await refused(rig, absent, "transport.unit"))["detail"]
    assert "not for this unit id" in detail and "RS-485" not in detail, "a plain Modbus TCP device has no RS-485"
    rig.line.server.set_fault(3, Fault(FaultKind.SILENT))
    silent = await rig.client.post("/api/followers", json=rig.follower("quiet", 3), headers=auth)
    detail = (await refused(rig, silent, "transport"))["detail"]
    assert "no answer" in detail and "RS-485" not in detail and "wiring" not in detail and "line settings" not in detail
    assert len(rig.supervisor.status().units) == 2 and settings_file(rig) == before


async def test_a_follower_that_answers_nonsense_is_refused(rig: WebRig, auth: dict[str, str]) -> None:
    assert rig.line.server is not None
    rig.line.server.set_fault(3, Fault(FaultKind.GARBAGE))
    before = settings_file(rig)
    response = await rig.client.post("/api/followers", json=rig.follower("cp3", 3), headers=auth)
    assert "make no sense" in (await refused(rig, response, "profile"))["detail"]
    rig.line.server.set_fault(4, Fault(FaultKind.EXCEPTION, exception_code=2))
    rejected = await rig.client.post("/api/followers", json=rig.follower("cp4", 4), headers=auth)
    assert "right profile" in (await refused(rig, rejected, "profile"))["detail"]
    assert len(rig.supervisor.status().units) == 2 and settings_file(rig) == before


@pytest.mark.parametrize(("change", "field"), [
    ({"id": "cp1"}, "id"),  # already on the site
    ({"id": "no spaces"}, "id"),
    ({"profile": "no-such-charger"}, "profile"),
    ({"profile": "powershare-sim-meter"}, "profile"),
    ({"breaker_limit_a": 40}, "breaker_limit_a"),  # above the nameplate: the site file's rule
    ({"transport": {"type": "tcp", "host": "127.0.0.1", "port": 70000}}, "transport.port"),
    ({"transport": {"type": "carrier-pigeon"}}, "transport"),
    ({"profile": "keba-p40", "transport": {"type": "rtu", "device": "/dev/null"}}, "transport.type"),
    ({"profile": "keba-p40", "transport": {"type": "tcp", "host": "127.0.0.1"}}, "transport.unit"),
    ({"phase_rotation": "L1L1L2"}, "phase_rotation"),
    ({"colour": "red"}, "colour"),
])
async def test_a_follower_breaking_a_site_file_rule_is_refused(rig: WebRig, auth: dict[str, str],
                                                              change: dict[str, Any], field: str) -> None:
    before = settings_file(rig)
    body = {**rig.follower("cp3", 3), **change}
    await refused(rig, await rig.client.post("/api/followers", json=body, headers=auth), field)
    assert len(rig.supervisor.status().units) == 2 and settings_file(rig) == before


async def test_a_follower_is_removed(rig: WebRig, auth: dict[str, str]) -> None:
    response = await rig.client.delete("/api/followers/cp2", headers=auth)
    assert response.status_code == 200
    await until(lambda: [u.id for u in rig.supervisor.status().units] == ["cp1"])
    before = settings_file(rig)
    await refused(rig, await rig.client.delete("/api/followers/cp2", headers=auth), "charger_id")
    assert settings_file(rig) == before
    assert [f["id"] for f in (await rig.client.get("/api/followers")).json()] == ["cp1"]


async def test_the_running_site_is_exported_as_a_site_file_check_config_accepts(rig: WebRig, auth: dict[str, str],
                                                                                tmp_path: Path) -> None:
    """Followers added on the page live in the state directory; the export makes them a site file again."""
    added = await rig.client.post("/api/followers", json=rig.follower("bay-3", 3, breaker_limit_a=16), headers=auth)
    assert added.status_code == 201, added.text
    await rig.client.put("/api/network-limit", json={"limit_a": 40}, headers=auth)
    response = await rig.client.get("/api/site.yaml")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/yaml")
    path = tmp_path / "exported.yaml"
    path.write_text(response.text)
    config, _ = load_site(path, REGISTRY.nameplate_a)
    assert [c.id for c in config.chargers] == ["cp1", "cp2", "bay-3"]
    assert config.network_limit_a == 40 and config.chargers[2].breaker_limit_a == 16
    assert config.name == "car park B"
    check = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli.main", "check-config", str(path),
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(check.communicate(), 60)
    assert check.returncode == 0, output.decode()


def test_the_export_never_writes_the_ocpp_authorization_key() -> None:
    document = {"installation_limit_a": 32, "network_limit_a": 32,
                "ocpp": {"url": "wss://csms.example/ocpp", "charge_point_id": "cp1", "security_profile": 2,
                         "password": "s3cret-authorization-key"}}
    config, _ = parse_site(document, "site.yaml", REGISTRY.nameplate_a)
    text = export_site(config)
    assert "s3cret-authorization-key" not in text and "password_file" in text
