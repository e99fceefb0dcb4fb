"""The OCPP client's ledger: one event is stored whole or not at all, and the previous version's files move in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.ocpp_builders import TXDEF, payload
from support.ocpp_station import T0, charging, config, snapshot, station

from gateway.faces.ocpp.outbox import START, Outbox


class Crash(BaseException):
    """The power goes out."""


def test_a_crash_while_a_transaction_starts_keeps_the_session_and_its_message_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: the session was saved before its StartTransaction entered the outbox; a crash between the two
    left a running transaction whose StartTransaction never went out."""
    site = config()
    first = station(tmp_path, site)
    real_append = Outbox.append

    def crash_on_start(self: Outbox, action: str, *args: Any, **kwargs: Any) -> int:
        if action == START:
            raise Crash
        return real_append(self, action, *args, **kwargs)

    monkeypatch.setattr(Outbox, "append", crash_on_start)
    with pytest.raises(Crash):
        first.observe(snapshot(T0, charging()))
    monkeypatch.undo()
    again = station(tmp_path, site)  # the restart after the power cut
    assert again.sessions.running() == {} and len(again.outbox) == 0  # neither half was stored
    again.observe(snapshot(T0 + 1, charging()))
    assert [m.action for m in again.outbox.pending()] == [START] and set(again.sessions.running()) == {1}
    restarted = station(tmp_path, site)
    assert [m.action for m in restarted.outbox.pending()] == [START] and set(restarted.sessions.running()) == {1}


def test_the_state_files_of_the_previous_version_are_moved_into_the_ledger(tmp_path: Path) -> None:
    running = {"local_tx": 3, "id_tag": "FREE", "started_s": T0, "meter_start_wh": 1000.0, "register": True,
               "blocked": False}
    (tmp_path / "charge-point.json").write_text(json.dumps({
        "version": 1, "configuration": {"HeartbeatInterval": "77"}, "sessions": {"1": {"running": running}},
        "availability": {"site": False, "connectors": [1]}, "auth_cache": {}}))
    profiles = {"version": 1, "profiles": [{"connectorId": 1, "profile": payload(5, 0, TXDEF, [(0, 10)])}],
                "transactions": []}
    (tmp_path / "profiles.json").write_text(json.dumps(profiles))
    first = station(tmp_path, config())
    assert first.config.integer("HeartbeatInterval") == 77
    assert first.sessions.running()[1].local_tx == 3 and first.inoperative == {1}
    assert not (tmp_path / "charge-point.json").exists() and (tmp_path / "charge-point.json.migrated").exists()
    assert [item.profile.id for item in first.store.profiles] == [5]
    assert first.outbox.new_local_tx() == 4  # never the running transaction's key again
    first.close()
    again = station(tmp_path, config())
    assert again.sessions.running()[1].local_tx == 3 and again.config.integer("HeartbeatInterval") == 77


def test_a_damaged_database_is_set_aside_and_the_station_starts_from_defaults(tmp_path: Path) -> None:
    (tmp_path / "charge-point.db").write_bytes(b"not a database at all, " * 100)
    first = station(tmp_path, config())
    assert first.sessions.running() == {} and len(first.outbox) == 0
    assert (tmp_path / "charge-point.db.corrupt-1").read_bytes().startswith(b"not a database")
    first.observe(snapshot(T0, charging()))
    assert [m.action for m in first.outbox.pending()] == [START]
