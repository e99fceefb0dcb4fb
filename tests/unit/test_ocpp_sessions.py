"""When transactions start and stop: the pure session state machine, by example and by property."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ocpp_units import unit

from gateway.faces.ocpp.sessions import (
    AuthorizeTag,
    Effect,
    Mode,
    SessionRules,
    Sessions,
    SessionStateError,
    StartTx,
    StopReason,
    StopTx,
)
from gateway.runtime.read_model import Availability, UnitStatus

FREE = SessionRules(Mode.FREE_VEND, "SITE")
AUTH = SessionRules(Mode.AUTHORIZE, "SITE")
REMOTE = SessionRules(Mode.REMOTE, "SITE", connection_timeout_s=60)


class Machine:
    def __init__(self, rules: SessionRules, connectors: int = 2) -> None:
        self.rules = rules
        self.sessions = Sessions(connectors)
        self.keys = itertools.count(1)

    def see(self, connector: int, status: UnitStatus | None, now: float = 0.0, operative: bool = True) -> list[Effect]:
        return self.sessions.observe(connector, status, now, self.rules, operative=operative,
                                     new_key=lambda: next(self.keys))


def test_free_vend_starts_at_plug_in_and_stops_at_unplug_with_register_readings() -> None:
    m = Machine(FREE)
    assert m.see(1, unit("A")) == []
    assert m.see(1, unit("B", energy_wh=5000.0), now=10) == [StartTx(1, 1, "SITE", 5000.0, 10, None)]
    assert m.see(1, unit("C", energy_wh=5600.0), now=20) == []
    assert m.sessions.energy_allowed(1, Mode.FREE_VEND)
    assert m.see(1, unit("A", energy_wh=6000.0), now=30) == [StopTx(1, 1, "SITE", 6000.0, 30,
                                                                    StopReason.EV_DISCONNECTED)]
    assert m.sessions.get(1).running is None and not m.sessions.get(1).finishing


def test_without_an_energy_register_the_meter_counts_the_session_from_0() -> None:
    m = Machine(FREE)
    m.see(1, unit("B", energy_wh=None))
    m.see(1, unit("C", energy_wh=None, session_energy_wh=750.0))
    stop = m.see(1, unit("A", energy_wh=None, session_energy_wh=0.0), now=5)
    assert stop == [StopTx(1, 1, "SITE", 750.0, 5, StopReason.EV_DISCONNECTED)]


def test_an_unreadable_charger_ends_nothing() -> None:
    m = Machine(FREE)
    m.see(1, unit("C"))
    assert m.see(1, unit(None, availability=Availability.UNAVAILABLE)) == []
    assert m.see(1, None) == []
    assert m.sessions.get(1).running is not None


def test_authorize_mode_asks_first_and_starts_once_accepted() -> None:
    m = Machine(AUTH)
    assert m.see(1, unit("B")) == [AuthorizeTag(1, "SITE")]
    assert m.see(1, unit("B")) == [], "asked once"
    assert not m.sessions.energy_allowed(1, Mode.AUTHORIZE)
    m.sessions.authorized(1, "SITE", accepted=True)
    assert [type(e) for e in m.see(1, unit("B"), now=3)] == [StartTx]


def test_a_refused_idtag_waits_until_the_car_leaves() -> None:
    m = Machine(AUTH)
    m.see(1, unit("B"))
    m.sessions.authorized(1, "SITE", accepted=False)
    assert m.see(1, unit("B")) == [] and m.sessions.get(1).running is None
    m.see(1, unit("A"))
    assert m.see(1, unit("B")) == [AuthorizeTag(1, "SITE")], "a new car is a new question"


def test_remote_mode_waits_for_remote_start_which_lapses_after_connection_timeout() -> None:
    m = Machine(REMOTE)
    assert m.see(1, unit("B")) == []
    chosen, reason, effects = m.sessions.remote_start(None, "DRIVER", None, 0, REMOTE, {1: unit("A"), 2: unit("B")},
                                                      operative=lambda n: True, authorize_first=False)
    assert (chosen, reason, effects) == (2, None, []), "the connector where a car waits"
    assert [type(e) for e in m.see(2, unit("B"), now=1)] == [StartTx]
    chosen, _, _ = m.sessions.remote_start(1, "OTHER", None, 10, REMOTE, {}, operative=lambda n: True,
                                           authorize_first=False)
    assert chosen == 1
    assert m.see(1, unit("A"), now=69) == [] and m.sessions.get(1).pending is not None
    assert m.see(1, unit("A"), now=70) == [] and m.sessions.get(1).pending is None, "ConnectionTimeOut"


def test_remote_start_is_refused_where_it_cannot_run() -> None:
    m = Machine(FREE)
    m.see(1, unit("C"))
    for connector, operative, why in ((1, True, "already runs"), (2, False, "Inoperative"), (3, True, "exist")):
        chosen, reason, _ = m.sessions.remote_start(connector, "X", None, 0, FREE, {}, operative=lambda n,
                                                    o=operative: o, authorize_first=False)
        assert chosen is None and reason is not None and why in reason


def test_remote_stop_then_finishing_until_unplugged() -> None:
    m = Machine(FREE)
    m.see(1, unit("C", energy_wh=100.0))
    stop = m.sessions.stop(1, StopReason.REMOTE, 5, unit("C", energy_wh=300.0))
    assert stop == StopTx(1, 1, "SITE", 300.0, 5, StopReason.REMOTE)
    assert m.sessions.get(1).finishing and not m.sessions.energy_allowed(1, Mode.FREE_VEND)
    assert m.see(1, unit("B")) == [], "no new transaction for the same car"
    m.see(1, unit("A"))
    assert [type(e) for e in m.see(1, unit("B"))] == [StartTx]


def test_refused_idtag_in_start_transaction_conf() -> None:
    m = Machine(FREE)
    m.see(1, unit("C"))
    assert m.sessions.refused(1, 1, FREE, 5, unit("C")) is not None  # StopTransactionOnInvalidId: stop
    m.see(1, unit("A"))
    m.see(1, unit("C"))
    keep = SessionRules(Mode.FREE_VEND, "SITE", stop_on_invalid_id=False)
    assert m.sessions.refused(1, 2, keep, 5, unit("C")) is None
    assert m.sessions.get(1).running is not None and not m.sessions.energy_allowed(1, Mode.FREE_VEND)


def test_reset_stops_everything_and_plugged_cars_start_anew() -> None:
    m = Machine(FREE)
    m.see(1, unit("C"))
    stops = m.sessions.reset(StopReason.HARD_RESET, 9, {1: unit("C")})
    assert [(s.connector, s.reason) for s in stops] == [(1, StopReason.HARD_RESET)]
    assert [type(e) for e in m.see(1, unit("C"))] == [StartTx]


def test_inoperative_connectors_start_nothing_until_operative() -> None:
    m = Machine(FREE)
    assert m.see(1, unit("B"), operative=False) == []
    assert [type(e) for e in m.see(1, unit("B"), operative=True)] == [StartTx]


def test_persistence_round_trip_and_bad_input() -> None:
    m = Machine(REMOTE)
    m.sessions.remote_start(1, "DRIVER", {"chargingProfileId": 1}, 0, REMOTE, {}, operative=lambda n: True,
                            authorize_first=True)
    m.see(2, unit("C"))
    restored = Sessions.from_json(2, m.sessions.to_json())
    assert restored.get(1) == m.sessions.get(1) and restored.get(2) == m.sessions.get(2)
    for bad in ([], {"1": {"running": {"local_tx": "x"}}}, {"1": {"running": {"local_tx": "1", "id_tag": "a",
                                                                           "started_s": 0, "meter_start_wh": 0,
                                                                           "register": True}}}):
        with pytest.raises(SessionStateError):
            Sessions.from_json(2, bad)


EVENTS = st.lists(st.tuples(st.integers(1, 2), st.sampled_from(
    ["plug", "charge", "unplug", "lost", "remote_start", "remote_stop", "reset", "auth_yes", "auth_no",
     "inoperative", "operative"])), max_size=60)


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.sampled_from([FREE, AUTH, REMOTE]))
def test_transactions_pair_up_and_never_overlap(events: list[tuple[int, str]], rules: SessionRules) -> None:
    """Whatever happens, each connector has at most one transaction at a time, every stop closes the running one,
    and a connector gives current only inside a transaction (or in free vend before it starts)."""
    m = Machine(rules)
    state = {1: unit("A"), 2: unit("A")}
    operative = {1: True, 2: True}
    running: dict[int, int] = {}
    effects: list[Any] = []
    for now, (n, event) in enumerate(events):
        if event in ("plug", "charge", "unplug", "lost"):
            state[n] = {"plug": unit("B"), "charge": unit("C"), "unplug": unit("A"),
                        "lost": unit(None, availability=Availability.UNAVAILABLE)}[event]
        elif event == "remote_start":
            _, _, out = m.sessions.remote_start(n, "R", None, now, rules, state, operative=lambda c: operative[c],
                                                authorize_first=rules.mode is Mode.AUTHORIZE)
            effects += out
        elif event == "remote_stop":
            stop = m.sessions.stop(n, StopReason.REMOTE, now, state[n])
            effects += [stop] if stop else []
        elif event == "reset":
            effects += m.sessions.reset(StopReason.SOFT_RESET, now, state)
        elif event in ("auth_yes", "auth_no"):
            for tag in ("SITE", "R"):
                m.sessions.authorized(n, tag, event == "auth_yes")
        else:
            operative[n] = event == "operative"
        for c in (1, 2):
            effects += m.see(c, state[c], now, operative=operative[c])
        for effect in effects:
            if isinstance(effect, StartTx):
                assert effect.connector not in running, "a second transaction on a busy connector"
                running[effect.connector] = effect.local_tx
            elif isinstance(effect, StopTx):
                assert running.pop(effect.connector) == effect.local_tx, "a stop for the wrong transaction"
        effects = []
        for c in (1, 2):
            assert (m.sessions.get(c).running is not None) == (c in running)
            if m.sessions.energy_allowed(c, rules.mode) and c not in running:
                assert rules.mode is Mode.FREE_VEND and not m.sessions.get(c).finishing
