"""Safety properties of the smart-charging evaluation, over random profile sets (hypothesis).

The oracle below evaluates a profile the slow, obvious way (walking recurrences one by one instead of the
modular arithmetic the module uses) and picks the profile in force per purpose straight from the spec's rule.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ocpp_builders import CPMAX, TX, TXDEF, at, electrical, make_store, payload

from gateway.faces.ocpp.charging_profile import (
    DAY_S,
    WEEK_S,
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    parse_profile,
)
from gateway.faces.ocpp.payload import format_time, tenths
from gateway.faces.ocpp.smart_charging import (
    NEXT_CHANGE_HORIZON_S,
    ClearStatus,
    Electrical,
    ProfileStore,
    composite,
    limits_at,
    next_change,
)

T0 = at("00:00")
INSTALL_AT = T0 - DAY_S
EL = electrical(max_a=40.0)
SETTINGS = settings(max_examples=120, deadline=None)


@st.composite
def profile_data(draw: st.DrawFn, pid: int) -> tuple[int, dict[str, Any]]:
    purpose = draw(st.sampled_from([CPMAX, TXDEF, TX]))
    kinds = ["Absolute", "Recurring"] + ([] if purpose == CPMAX else ["Relative"])
    kind = draw(st.sampled_from(kinds))
    unit = draw(st.sampled_from(["A", "W"]))
    count = draw(st.integers(1, 4))
    starts = [0, *sorted(draw(st.sets(st.integers(1, 20_000), min_size=count - 1, max_size=count - 1)))]
    top = 640 if unit == "A" else 300_000
    limits = [draw(st.integers(0, top)) / 10 for _ in starts]
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["validFrom"] = format_time(T0 + draw(st.integers(-DAY_S, 2 * DAY_S)))
    if draw(st.booleans()):
        extra["validTo"] = format_time(T0 + draw(st.integers(0, 3 * DAY_S)))
    connector = 0 if purpose == CPMAX else draw(st.integers(1, 2)) if purpose == TX else draw(st.integers(0, 2))
    data = payload(pid, draw(st.integers(0, 3)), purpose, list(zip(starts, limits, strict=True)), kind=kind, unit=unit,
                   start=format_time(T0 + draw(st.integers(-DAY_S, 2 * DAY_S))),
                   duration=draw(st.none() | st.integers(1, 30_000)),
                   recurrency=draw(st.sampled_from(["Daily", "Weekly"])) if kind == "Recurring" else None, **extra)
    return connector, data


@st.composite
def stores(draw: st.DrawFn) -> ProfileStore:
    store = make_store()
    store.start_transaction(1, INSTALL_AT + draw(st.integers(0, 2 * DAY_S)), 1)
    store.start_transaction(2, INSTALL_AT + draw(st.integers(0, 2 * DAY_S)), 2)
    for pid in range(draw(st.integers(0, 8))):
        connector, data = draw(profile_data(pid))
        store.set_charging_profile(connector, parse_profile(data), INSTALL_AT)
    return store


instants = st.integers(0, 3 * DAY_S).map(lambda s: T0 + s)


# --- The oracle -----------------------------------------------------------------------------------------------------

def oracle_limit(p: ChargingProfile, t: float, anchor: float | None) -> tuple[float, RateUnit] | None:
    if (p.valid_from is not None and t < p.valid_from) or (p.valid_to is not None and t >= p.valid_to):
        return None
    sched = p.schedule
    length = math.inf if sched.duration_s is None else sched.duration_s
    if p.kind is Kind.RELATIVE:
        origin = t if anchor is None else anchor
    else:
        assert sched.start is not None
        origin = sched.start
        if p.kind is Kind.RECURRING:
            every = DAY_S if p.recurrency is Recurrency.DAILY else WEEK_S
            length = min(length, every)
            while origin + every <= t:
                origin += every
    offset = t - origin
    if offset < 0 or offset >= length:
        return None
    return [q.limit for q in sched.periods if q.start_s <= offset][-1], sched.unit


def oracle_amps(store: ProfileStore, el: Electrical, connector: int, purpose: Purpose, t: float) -> float | None:
    tx = store.transactions.get(connector)
    anchor = tx.start if tx is not None else None
    owners = (0,) if purpose is Purpose.CHARGE_POINT_MAX else (connector,) if purpose is Purpose.TX else (connector, 0)
    found = [i for i in store.profiles if i.profile.purpose is purpose and i.connector_id in owners]
    found.sort(key=lambda i: (-i.profile.stack_level, i.connector_id != connector))
    phases = el.site_phases if purpose is Purpose.CHARGE_POINT_MAX else el.connectors[connector - 1].phases
    for item in found:
        value = oracle_limit(item.profile, t, anchor)
        if value is not None:
            limit, unit = value
            return limit if unit is RateUnit.A else limit / (el.voltage_v * phases)
    return None


def close_to(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


# --- Properties -----------------------------------------------------------------------------------------------------

@SETTINGS
@given(stores(), st.lists(instants, min_size=1, max_size=10))
def test_limits_never_exceed_the_profiles_in_force(store: ProfileStore, times: list[float]) -> None:
    for t in times:
        limits = limits_at(store, EL, t)
        site = oracle_amps(store, EL, 1, Purpose.CHARGE_POINT_MAX, t)
        assert limits.site_a == (None if site is None else close_to(site))
        for n in (1, 2):
            tx_level = oracle_amps(store, EL, n, Purpose.TX, t)
            if tx_level is None:
                tx_level = oracle_amps(store, EL, n, Purpose.TX_DEFAULT, t)
            bounds = [b for b in (site, tx_level) if b is not None]
            got = limits.connectors_a[n - 1]
            if not bounds:
                assert got is None
            else:
                assert got is not None and all(got <= b + 1e-9 for b in bounds)
                assert got == close_to(min(bounds))


@SETTINGS
@given(stores(), instants, st.integers(0, 2), st.lists(st.integers(0, DAY_S - 1), min_size=1, max_size=10))
def test_composite_schedule_agrees_with_the_limits_in_force(store: ProfileStore, now: float, connector: int,
                                                            offsets: list[int]) -> None:
    result = composite(store, EL, connector, now, DAY_S)
    assert result.periods[0].start_s == 0
    for offset in offsets:
        reported = [p.limit for p in result.periods if p.start_s <= offset][-1]
        limits = limits_at(store, EL, now + offset)
        if connector == 0:
            assert limits.site_a is None or reported <= limits.site_a + 1e-9
            assert reported <= EL.site_max_a
        else:
            expected = min(v for v in (limits.connectors_a[connector - 1], EL.connectors[connector - 1].max_a)
                           if v is not None)
            assert reported == tenths(expected)


@SETTINGS
@given(stores(), st.integers(0, 640), st.lists(instants, min_size=1, max_size=10))
def test_a_top_charge_point_max_caps_every_connector_and_the_composite(store: ProfileStore, tenth_amps: int,
                                                                       times: list[float]) -> None:
    cap = tenth_amps / 10
    store.set_charging_profile(0, parse_profile(payload(99, 8, CPMAX, [(0, cap)], start="2023-12-30T00:00:00Z")),
                               INSTALL_AT)
    for t in times:
        limits = limits_at(store, EL, t)
        assert limits.site_a == cap
        assert all(c is not None and c <= cap for c in limits.connectors_a)
        for connector in (0, 1, 2):
            assert all(p.limit <= cap for p in composite(store, EL, connector, t, 7200).periods)


@SETTINGS
@given(stores(), instants)
def test_clearing_everything_leaves_no_limit(store: ProfileStore, t: float) -> None:
    had_profiles = bool(store.profiles)
    assert (store.clear_charging_profile().status is ClearStatus.ACCEPTED) == had_profiles
    assert limits_at(store, EL, t).site_a is None and limits_at(store, EL, t).connectors_a == (None, None)
    assert [p.limit for p in composite(store, EL, 1, t, 3600).periods] == [EL.connectors[0].max_a]
    assert next_change(store, EL, t) is None


@SETTINGS
@given(stores(), instants, st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=10))
def test_limits_hold_until_next_change(store: ProfileStore, now: float, fractions: list[float]) -> None:
    changes_at = next_change(store, EL, now)
    current = limits_at(store, EL, now)
    if changes_at is None:
        assert not store.profiles
        return
    assert now < changes_at <= now + NEXT_CHANGE_HORIZON_S
    for fraction in fractions:
        t = min(now + fraction * (changes_at - now), math.nextafter(changes_at, -math.inf))
        assert limits_at(store, EL, t) == current
    if changes_at < now + NEXT_CHANGE_HORIZON_S:
        assert limits_at(store, EL, changes_at) != current


@SETTINGS
@given(stores(), st.lists(instants, min_size=1, max_size=5))
def test_persisting_and_reloading_changes_no_limit(store: ProfileStore, times: list[float]) -> None:
    reloaded = ProfileStore.from_json(store.to_json(), store.rules)
    for t in times:
        assert limits_at(reloaded, EL, t) == limits_at(store, EL, t)


def test_oracle_sanity() -> None:
    """The oracle itself, on a hand-checked case, so a wrong oracle cannot pass the properties vacuously."""
    p = parse_profile(payload(1, 0, CPMAX, [(0, 10), (3600, 20)], kind="Recurring", recurrency="Daily",
                                       start="2024-01-01T22:00:00Z", duration=7200))
    assert oracle_limit(p, at("23:30"), None) == (20, RateUnit.A)
    assert oracle_limit(p, at("22:30", "2024-01-03"), None) == (10, RateUnit.A)
    assert oracle_limit(p, at("00:30", "2024-01-03"), None) is None
