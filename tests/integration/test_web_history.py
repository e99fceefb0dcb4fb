"""The history through the real web face: it survives a restart of the gateway on the same state directory, it
pages and filters, its CSV files are proper CSV, and a bad query is refused in an installer's words.

The real supervisor, simulated Modbus chargers on loopback, the real history in the test's state directory and the
real web server on a free port, read with httpx.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.web import car, until, web_rig

from gateway.runtime.history.service import HISTORY_FILE

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def poll(client: httpx.AsyncClient, path: str, params: dict[str, Any], done: Callable[[Any], bool]) -> Any:
    """The answer of ``path`` once ``done`` says so (the history takes a point a second)."""
    for _ in range(100):
        answer = (await client.get(path, params=params)).json()
        if done(answer):
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} {params} never answered as expected: {answer}")


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="powershare-')
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


async def test_sessions_events_and_current_survive_a_restart_and_export_as_csv(tmp_path: Path) -> None:
    state = tmp_path / "state"
    departure = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    async with web_rig(state, configured=2, units=2) as rig:
        auth = await rig.sign_in()
        assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)).status_code == 200
        rig.chargers[0].plug(car("a"))
        await until(lambda: rig.supervisor.status().units[0].session_energy_wh > 0, timeout_s=10)
        rig.chargers[0].unplug()
        await until(lambda: rig.supervisor.status().units[0].state == "A", timeout_s=10)
        rig.chargers[1].plug(car("b"))
        await until(lambda: rig.supervisor.status().units[1].session_energy_wh > 0, timeout_s=10)
        need = {"departure": departure.isoformat(), "energy_kwh": 12.5}  # its event's text holds a comma
        assert (await rig.client.put("/api/units/cp2/session-need", json=need, headers=auth)).status_code == 200
        before = (await rig.client.get("/api/sessions")).json()
        assert before["total"] == 2, before
        energy_cp1 = before["sessions"][1]["energy_kwh"]
        assert before["sessions"][1]["unit"] == "cp1" and before["sessions"][1]["end_s"] is not None
        assert energy_cp1 > 0
    assert (state / HISTORY_FILE).exists()

    # The same state directory; cp2's car is still there when the gateway comes back.
    async with web_rig(state, configured=2, units=2, cars={2: car("b")}) as rig:
        energy_cp2 = before["sessions"][0]["energy_kwh"]
        # The charger's own count started again from zero (a new simulator): the new run adds to what was kept.
        after = await poll(rig.client, "/api/sessions", {},
                           lambda page: page["sessions"][0]["energy_kwh"] > energy_cp2)
        await rig.history.flush()
        assert after["total"] == 2, after
        cp2, cp1 = after["sessions"]
        assert cp1 == before["sessions"][1], "a finished session is kept as it was"
        assert cp2["unit"] == "cp2" and cp2["start_s"] == before["sessions"][0]["start_s"] and cp2["end_s"] is None, \
            "the car never left: its session carries on across the restart"

        events = (await rig.client.get("/api/events")).json()
        texts = [e["text"] for e in events]
        assert "power sharing enabled" in texts, texts
        enabled = events[texts.index("power sharing enabled")]
        assert enabled["origin"] == "web installer@127.0.0.1"
        points = (await rig.client.get("/api/history", params={"range": "1h"})).json()
        assert points and points[0]["limit_a"] == [32, 32, 32], "the first run's current per phase"
        assert set(points[0]) == {"time_s", "drawn_a", "drawn_max_a", "limit_a"}

        sessions = rows(await rig.client.get("/api/sessions.csv"))
        assert [s["unit"] for s in sessions] == ["cp1", "cp2"], "oldest first"
        assert ISO_UTC.match(sessions[0]["start_utc"]) and ISO_UTC.match(sessions[0]["end_utc"])
        assert sessions[1]["end_utc"] == "" and float(sessions[0]["energy_kwh"]) == pytest.approx(energy_cp1, abs=1e-3)
        assert datetime.strptime(sessions[0]["start_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() \
            == int(cp1["start_s"])

        response = await rig.client.get("/api/events.csv")
        exported = rows(response)
        need_text = next(t for t in texts if t.startswith("unit cp2 session"))
        assert "," in need_text and f'"{need_text}"' in response.text, "a field with a comma is quoted"
        assert [e["text"] for e in exported][-len(texts):] == texts
        assert all(ISO_UTC.match(e["time_utc"]) for e in exported)

        history = rows(await rig.client.get("/api/history.csv", params={"range": "1h"}))
        assert list(history[0]) == ["time_utc", "l1_a", "l2_a", "l3_a", "l1_max_a", "l2_max_a", "l3_max_a",
                                    "limit_l1_a", "limit_l2_a", "limit_l3_a"]
        assert history[0]["limit_l1_a"] == "32.00" and ISO_UTC.match(history[0]["time_utc"])


async def test_sessions_page_and_filter(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state", configured=3, units=3, cars={1: car("a"), 2: car("b"), 3: car("c")}) \
            as rig:
        await until(lambda: all(u.state == "B" or u.state == "C" for u in rig.supervisor.status().units))
        first = await poll(rig.client, "/api/sessions", {"limit": 2}, lambda page: page["total"] == 3)
        second = (await rig.client.get("/api/sessions", params={"limit": 2, "offset": 2})).json()
        assert first["total"] == second["total"] == 3 and len(first["sessions"]) == 2 and len(second["sessions"]) == 1
        assert {s["unit"] for s in first["sessions"] + second["sessions"]} == {"cp1", "cp2", "cp3"}
        only = (await rig.client.get("/api/sessions", params={"unit": "cp2"})).json()
        assert [s["unit"] for s in only["sessions"]] == ["cp2"] and only["total"] == 1
        later = (await rig.client.get("/api/sessions", params={"from": "2099-01-01T00:00:00Z"})).json()
        assert later["total"] == 3, "a running session belongs to every range after its start"
        earlier = (await rig.client.get("/api/sessions", params={"to": "2001-01-01"})).json()
        assert earlier == {"total": 0, "offset": 0, "limit": 50, "sessions": []}
        assert (await rig.client.get("/api/events", params={"limit": 1})).status_code == 200


async def test_a_circuit_has_its_own_current_and_limit(tmp_path: Path) -> None:
    def on_a_board(document: dict[str, Any]) -> None:
        document["circuits"] = [{"id": "board-1", "limit_a": 20}]
        document["chargers"][0]["circuit"] = "board-1"

    async with web_rig(tmp_path / "state", configured=2, units=2, edit=on_a_board, cars={1: car("a")}) as rig:
        auth = await rig.sign_in()
        assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=auth)).status_code == 200
        await until(lambda: rig.supervisor.status().circuits[0].drawn_a[0] > 5, timeout_s=10)
        board = rig.supervisor.status().circuits[0]
        assert board.id == "board-1" and board.limit_a == (20.0, 20.0, 20.0)
        points = await poll(rig.client, "/api/history", {"circuit": "board-1"},
                            lambda found: bool(found) and found[-1]["drawn_a"][0] > 5)
        assert points[-1]["limit_a"] == [20, 20, 20] and points[-1]["drawn_a"][0] <= 20
        site = (await rig.client.get("/api/history")).json()
        assert site[-1]["limit_a"] == [32, 32, 32]
        file = await rig.client.get("/api/history.csv", params={"circuit": "board-1", "range": "1h"})
        assert 'filename="powershare-history-board-1-1h.csv"' in file.headers["content-disposition"]


@pytest.mark.parametrize(("path", "params", "field", "words"), [
    ("/api/history", {"range": "2h"}, "range", "The range must be one of '10m', '1h', '24h' or '7d'"),
    ("/api/history.csv", {"range": "10m"}, "range", "The range must be one of '1h', '24h' or '7d'"),
    ("/api/history", {"circuit": "board-9"}, "circuit", "This site has no circuit 'board-9'"),
    ("/api/sessions", {"from": "yesterday"}, "from", "The start time must be a date and time such as"),
    ("/api/sessions.csv", {"to": "2026-13-01"}, "to", "The end time must be a date and time such as"),
    ("/api/events", {"from": "2026-05-02", "to": "2026-05-01"}, "from",
     "The start time must be before the end time"),
    ("/api/events.csv", {"from": "2026-05-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "from",
     "The start time must be before the end time"),
    ("/api/events", {"limit": "0"}, "limit", "The number of rows must be at least 1"),
    ("/api/sessions", {"limit": "all"}, "limit", "The number of rows must be a whole number"),
    ("/api/sessions", {"offset": "-1"}, "offset", "The number of rows to skip must be at least 0"),
])
async def test_a_bad_query_is_refused_in_an_installers_words(tmp_path: Path, path: str, params: dict[str, str],
                                                            field: str, words: str) -> None:
    async with web_rig(tmp_path / "state", configured=1, units=1) as rig:
        response = await rig.client.get(path, params=params)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["field"] == field and body["detail"].startswith(words), body
        assert "Input should" not in body["detail"] and "query" not in body["detail"]


async def test_the_history_reads_need_the_password_where_reads_do(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state", configured=1, units=1, web={"read_access": "password"}) as rig:
        paths = ("/api/history", "/api/sessions", "/api/events", "/api/history.csv", "/api/sessions.csv",
                 "/api/events.csv")
        for path in paths:
            assert (await rig.client.get(path)).status_code == 401, path
        auth = await rig.sign_in()
        for path in paths:
            assert (await rig.client.get(path, headers=auth)).status_code == 200, path
