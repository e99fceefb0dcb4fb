"""The OCPP client's ledger: one event is stored whole or not at all, and the previous version's files move in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.ocpp_builders import TXDEF, payload
from support.ocpp_rig import REGISTRY, site_data
from support.ocpp_units import unit

from gateway.core.limits import LimitSource
from gateway.faces.ocpp.outbox import START, Outbox
from gateway.faces.ocpp.station import Station
from gateway.runtime.read_model import SiteStatus
from gateway.site.config import SiteConfig, parse_site

T0 = 1_700_000_000.0


class Crash(BaseException):
    """The power goes out."""


def config(n: int = 1) -> SiteConfig:
    data = site_data(1502, n, {"url": "ws://127.0.0.1:1/x", "authorization": {"mode": "free_vend"}}, limit=32)
    return parse_site(data, "site.yaml", REGISTRY.nameplate_a)[0]


def station(state: Path, site: SiteConfig, now: float = T0) -> Station:
    assert site.ocpp is not None
    return Station(site, site.ocpp, state, REGISTRY.nameplate_a, lambda: now)


def snapshot(t: float, *units: Any) -> SiteStatus:
    return SiteStatus(time_s=t, enabled=True, installation_limit_a=100, network_limit_a=48,
                      effective_limit_a=(48, 48, 48), limit_source=next(iter(LimitSource)), measured_a=(0, 0, 0),
                      allocated_a=(0, 0, 0), power_w=0, units=tuple(units), health=None)  # type: ignore[arg-type]


def charging(n: int = 1) -> Any:
    return unit("C", id=f"cp{n}", index=n - 1, current_a=(16.0, 16.0, 16.0), power_w=11000.0)


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
