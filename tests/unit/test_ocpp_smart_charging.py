"""OCPP 1.6 smart charging: the research's conformance vectors first, then one test per rule."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from support.ocpp_builders import CPMAX, TX, TXDEF, at, electrical, install, make_store, payload, periods, profile

from drivers.ocpp.meter_values import parse_time
from gateway.faces.ocpp.charging_profile import Purpose, RateUnit, parse_profile, parse_set_charging_profile
from gateway.faces.ocpp.payload import CallErrorCode, PayloadError
from gateway.faces.ocpp.smart_charging import (
    MAX_COMPOSITE_S,
    NEXT_CHANGE_HORIZON_S,
    ClearStatus,
    CompositeStatus,
    ConnectorRating,
    Electrical,
    ProfileRules,
    ProfileStore,
    SetStatus,
    StoreFormatError,
    composite,
    limits_at,
    next_change,
    parse_get_composite_schedule,
)
from gateway.site.config import parse_site

EL = electrical()

# --- The research's vectors (section 8 and libocpp's composite tests) ----------------------------------------------


def test_c1_connector_default_shows_through_a_connector_profile_window() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, TXDEF, [(0, 16)]), at("09:00"))
    install(store, 1, payload(2, 1, TXDEF, [(0, 10)], start="2024-01-01T10:00:00Z", duration=3600), at("09:00"))
    assert periods(composite(store, EL, 1, at("09:30"), 7200, RateUnit.A)) == [(0, 16), (1800, 10), (5400, 16)]


def test_c2_relative_tx_profile_starts_at_the_transaction_and_meets_the_charge_point_max() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 32), (3600, 20)]), at("00:00"))
    store.start_transaction(1, at("00:20"), 42)
    install(store, 1, payload(2, 0, TX, [(0, 25)], kind="Relative", transactionId=42), at("00:25"))
    assert periods(composite(store, EL, 1, at("00:30"), 3600)) == [(0, 25), (1800, 20)]


def test_c3_tx_profile_replaces_tx_default_rather_than_taking_the_minimum() -> None:
    store = make_store()
    install(store, 1, payload(1, 5, TXDEF, [(0, 10)]), at("00:00"))
    store.start_transaction(1, at("00:10"), 7)
    install(store, 1, payload(2, 0, TX, [(0, 25)]), at("00:11"))
    assert periods(composite(store, EL, 1, at("00:12"), 600)) == [(0, 25)]
    assert limits_at(store, EL, at("00:12")).connectors_a[0] == 25


def test_c6c_watts_to_amps_is_floored_to_a_tenth() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 11000)], unit="W"), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60, RateUnit.A)) == [(0, 15.9)]
    assert limits_at(store, EL, at("01:00")).site_a == pytest.approx(11000 / 690)


def test_c12_connector_default_replaces_the_charge_point_default_only_on_its_connector() -> None:
    store = make_store()
    install(store, 0, payload(1, 1, TXDEF, [(0, 16)]), at("00:00"))
    install(store, 1, payload(2, 1, TXDEF, [(0, 10)]), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60)) == [(0, 10)]
    assert periods(composite(store, EL, 2, at("01:00"), 60)) == [(0, 16)]


def _libocpp_mixed(cap_a: float) -> ProfileStore:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, cap_a, 1)], kind="Recurring", recurrency="Daily"), at("00:00"))
    watts = [(0, 12420), (300, 8280), (600, 6210), (900, 4140), (1200, 2070)]
    install(store, 0, payload(2, 0, TXDEF, watts, kind="Relative", unit="W"), at("00:00"))
    return store


def test_libocpp_mixing_current_and_power_on_one_phase() -> None:
    one_phase = electrical(phases=1)
    result = composite(_libocpp_mixed(16), one_phase, 1, at("12:00"), 1800, RateUnit.A)
    assert periods(result) == [(0, 16), (1200, 9)]


def test_libocpp_mixing_current_and_power_on_three_phases() -> None:
    result = composite(_libocpp_mixed(16), EL, 1, at("12:00"), 1800, RateUnit.A)
    assert periods(result) == [(0, 16), (300, 12), (600, 9), (900, 6), (1200, 3)]


def test_libocpp_mixing_requested_in_watts() -> None:
    one_phase = electrical(phases=1)
    result = composite(_libocpp_mixed(10), one_phase, 1, at("12:00"), 1800, RateUnit.W)
    assert periods(result) == [(0, 2300), (1200, 2070)]


def test_s1_tx_profile_without_a_transaction_is_rejected() -> None:
    store = make_store()
    outcome = store.set_charging_profile(1, profile(1, 0, TX), at("00:00"))
    assert outcome.status is SetStatus.REJECTED and "no transaction" in (outcome.reason or "")
    assert store.profiles == ()


def test_s2_tx_profile_for_another_transaction_is_rejected() -> None:
    store = make_store()
    store.start_transaction(1, at("00:00"), 1)
    outcome = store.set_charging_profile(1, profile(1, 0, TX, transactionId=999), at("00:01"))
    assert outcome.status is SetStatus.REJECTED and "999" in (outcome.reason or "")


def test_s3_tx_profile_on_connector_zero_is_rejected() -> None:
    store = make_store()
    store.start_transaction(1, at("00:00"), 1)
    assert store.set_charging_profile(0, profile(1, 0, TX), at("00:01")).status is SetStatus.REJECTED


def test_s4_charge_point_max_on_a_connector_is_rejected() -> None:
    assert make_store().set_charging_profile(1, profile(1, 0, CPMAX), at("00:00")).status is SetStatus.REJECTED


def test_s9_unknown_connector_is_a_property_constraint_violation() -> None:
    store = make_store()
    with pytest.raises(PayloadError) as err:
        store.set_charging_profile(99, profile(1, 0, TXDEF), at("00:00"))
    assert err.value.code is CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert store.profiles == ()


def test_s14_clear_without_fields_clears_everything() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX), at("00:00"))
    install(store, 1, payload(2, 0, TXDEF), at("00:00"))
    outcome = store.clear_charging_profile()
    assert outcome.status is ClearStatus.ACCEPTED and sorted(outcome.cleared) == [1, 2]
    assert store.profiles == ()


def test_s15_clear_matching_nothing_is_unknown() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX), at("00:00"))
    assert store.clear_charging_profile(purpose=Purpose.TX).status is ClearStatus.UNKNOWN
    assert len(store.profiles) == 1


# --- Parsing ------------------------------------------------------------------------------------------------------

def test_snake_case_from_the_library_reads_like_camel_case() -> None:
    camel = payload(3, 2, TXDEF, [(0, 16, 3), (60, 8)], duration=600, validFrom="2024-01-01T00:00:00Z")
    snake = {"charging_profile_id": 3, "stack_level": 2, "charging_profile_purpose": TXDEF,
             "charging_profile_kind": "Absolute", "valid_from": "2024-01-01T00:00:00Z",
             "charging_schedule": {"charging_rate_unit": "A", "duration": 600,
                                   "start_schedule": "2024-01-01T00:00:00Z",
                                   "charging_schedule_period": [{"start_period": 0, "limit": 16, "number_phases": 3},
                                                                {"start_period": 60, "limit": 8}]}}
    assert parse_profile(snake) == parse_profile(camel)


def test_decimal_limits_become_plain_floats() -> None:
    data = payload(1, 0, TXDEF, [(0, Decimal("21.4"))])
    data["chargingSchedule"]["minChargingRate"] = Decimal("6.0")
    parsed = parse_profile(data)
    assert type(parsed.schedule.periods[0].limit) is float and parsed.schedule.periods[0].limit == 21.4
    assert type(parsed.schedule.min_rate) is float
    json.dumps(parsed.to_payload())


def test_payload_round_trip() -> None:
    original = profile(7, 3, CPMAX, [(0, 32.5), (3600, 20, 1)], kind="Recurring", recurrency="Weekly",
                       duration=7200, validFrom="2024-01-01T00:00:00Z", validTo="2025-01-01T00:00:00.250Z")
    assert parse_profile(original.to_payload()) == original


@pytest.mark.parametrize(("change", "code", "words"), [
    (lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(limit=15.94),
     CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "more than one decimal"),
    (lambda d: d.update(chargingProfilePurpose="MaxProfile"), CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
     "not one of"),
    (lambda d: d["chargingSchedule"].update(chargingRateUnit="X"), CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
     "not one of"),
    (lambda d: d.pop("stackLevel"), CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION, "stackLevel: required"),
    (lambda d: d.update(stackLevel="1"), CallErrorCode.TYPE_CONSTRAINT_VIOLATION, "not an integer"),
    (lambda d: d.update(stackLevel=True), CallErrorCode.TYPE_CONSTRAINT_VIOLATION, "not an integer"),
    (lambda d: d.update(stackLevel=1.5), CallErrorCode.TYPE_CONSTRAINT_VIOLATION, "not an integer"),
    (lambda d: d.update(colour="red"), CallErrorCode.FORMATION_VIOLATION, "unknown field(s) colour"),
    (lambda d: d.update(validFrom="yesterday"), CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "ISO 8601"),
    (lambda d: d["chargingSchedule"].update(chargingSchedulePeriod=[]), CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
     "at least one"),
    (lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(limit=float("nan")),
     CallErrorCode.TYPE_CONSTRAINT_VIOLATION, "not a finite number"),
    (lambda d: d.update(chargingSchedule=[1]), CallErrorCode.TYPE_CONSTRAINT_VIOLATION, "must be an object"),
])
def test_format_errors_carry_the_16_code_and_name_the_field(change: Any, code: CallErrorCode, words: str) -> None:
    data = payload(1, 0, TXDEF)
    change(data)
    with pytest.raises(PayloadError) as err:
        parse_profile(data)
    assert err.value.code is code
    assert words in str(err.value)


def test_a_time_without_zone_is_utc() -> None:
    assert parse_time("2024-01-01T10:00:00") == at("10:00")
    assert parse_time("2024-01-01T12:00:00+02:00") == at("10:00")


def test_recurrency_kind_on_a_non_recurring_profile_is_ignored() -> None:
    assert profile(1, 0, TXDEF, recurrency="Daily").recurrency is None


def test_set_charging_profile_request() -> None:
    connector, parsed = parse_set_charging_profile({"connectorId": 2, "csChargingProfiles": payload(4, 0, TXDEF)})
    assert connector == 2 and parsed.id == 4
    with pytest.raises(PayloadError):
        parse_set_charging_profile({"connectorId": 2})


def test_get_composite_schedule_request() -> None:
    assert parse_get_composite_schedule({"connectorId": 1, "duration": 60}) == (1, 60, None)
    assert parse_get_composite_schedule({"connectorId": 0, "duration": 60, "chargingRateUnit": "W"})[2] is RateUnit.W
    with pytest.raises(PayloadError) as err:
        parse_get_composite_schedule({"connectorId": 0, "duration": 60, "chargingRateUnit": "kW"})
    assert err.value.code is CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION


# --- SetChargingProfile: what is refused --------------------------------------------------------------------------

@pytest.mark.parametrize(("connector", "data", "words"), [
    (1, payload(1, 0, TXDEF, [(10, 16)]), "must start at 0"),
    (1, payload(1, 0, TXDEF, [(0, 16), (60, 10), (60, 8)]), "does not come after 60"),
    (1, payload(1, 0, TXDEF, [(0, 16, 4)]), "numberPhases 4"),
    (1, payload(1, 0, TXDEF, [(0, -1)]), "negative"),
    (1, payload(1, 9, TXDEF), "outside 0..8"),
    (1, payload(1, -1, TXDEF), "outside 0..8"),
    (1, payload(1, 0, TXDEF, [(i * 60, 16) for i in range(25)]), "ChargingScheduleMaxPeriods"),
    (1, payload(1, 0, TXDEF, kind="Recurring"), "needs recurrencyKind"),
    (1, payload(1, 0, TXDEF, kind="Recurring", recurrency="Daily", start=None), "needs startSchedule"),
    (0, payload(1, 0, CPMAX, kind="Relative"), "cannot be Relative"),
    (1, payload(1, 0, TXDEF, validFrom="2024-01-02T00:00:00Z", validTo="2024-01-01T00:00:00Z"), "not after validFrom"),
    (1, payload(1, 0, TXDEF, validTo="2024-01-01T05:00:00Z"), "already past"),
    (1, payload(1, 0, TXDEF, duration=0), "not positive"),
])
def test_refused_profiles_are_rejected_with_a_reason_and_change_nothing(connector: int, data: dict[str, Any],
                                                                         words: str) -> None:
    store = make_store()
    install(store, 1, payload(50, 3, TXDEF, [(0, 20)]), at("00:00"))
    before = store.to_json()
    outcome = store.set_charging_profile(connector, parse_profile(data), at("06:00"))
    assert outcome.status is SetStatus.REJECTED
    assert words in (outcome.reason or "")
    assert store.to_json() == before


def test_unit_not_allowed_is_rejected() -> None:
    store = make_store(allowed_units=frozenset({RateUnit.A}))
    outcome = store.set_charging_profile(0, profile(1, 0, CPMAX, unit="W"), at("00:00"))
    assert outcome.status is SetStatus.REJECTED and "ChargingScheduleAllowedChargingRateUnit" in (outcome.reason or "")


def test_the_profile_cap_counts_after_replacement() -> None:
    store = make_store(max_profiles=2)
    install(store, 0, payload(1, 0, CPMAX), at("00:00"))
    install(store, 1, payload(2, 0, TXDEF), at("00:00"))
    full = store.set_charging_profile(2, profile(3, 0, TXDEF), at("00:00"))
    assert full.status is SetStatus.REJECTED and "MaxChargingProfilesInstalled" in (full.reason or "")
    replacing = store.set_charging_profile(1, profile(2, 0, TXDEF, [(0, 8)]), at("00:00"))
    assert replacing.status is SetStatus.ACCEPTED and replacing.replaced == (2,)


# --- Replacement --------------------------------------------------------------------------------------------------

def test_same_id_replaces_wherever_it_was() -> None:
    store = make_store()
    install(store, 1, payload(5, 0, TXDEF, [(0, 10)]), at("00:00"))
    outcome = install(store, 2, payload(5, 2, TXDEF, [(0, 12)]), at("00:00"))
    assert outcome.replaced == (5,)
    assert [(i.connector_id, i.profile.stack_level) for i in store.profiles] == [(2, 2)]


def test_same_stack_and_purpose_replaces_only_on_the_same_connector() -> None:
    store = make_store()
    install(store, 1, payload(1, 2, TXDEF, [(0, 10)]), at("00:00"))
    install(store, 2, payload(2, 2, TXDEF, [(0, 11)]), at("00:00"))
    outcome = install(store, 1, payload(3, 2, TXDEF, [(0, 12)]), at("00:00"))
    assert outcome.replaced == (1,)
    assert sorted(i.profile.id for i in store.profiles) == [2, 3]


def test_other_stack_or_purpose_is_added() -> None:
    store = make_store()
    install(store, 0, payload(1, 2, TXDEF), at("00:00"))
    assert install(store, 0, payload(2, 3, TXDEF), at("00:00")).replaced == ()
    assert install(store, 0, payload(3, 2, CPMAX), at("00:00")).replaced == ()
    assert len(store.profiles) == 3


def test_a_replaced_profile_does_not_come_back_after_a_restart() -> None:
    """libocpp PR #1051: the replaced profile reappeared after a reboot."""
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 40)]), at("00:00"))
    install(store, 0, payload(2, 0, CPMAX, [(0, 20)]), at("00:00"))
    reloaded = ProfileStore.from_json(store.to_json(), store.rules)
    assert [i.profile.id for i in reloaded.profiles] == [2]
    assert limits_at(reloaded, EL, at("01:00")).site_a == 20


# --- Stacking and validity ------------------------------------------------------------------------------------------

def test_highest_stack_wins_even_with_a_higher_limit() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)]), at("00:00"))
    install(store, 0, payload(2, 1, CPMAX, [(0, 30)]), at("00:00"))
    assert limits_at(store, EL, at("01:00")).site_a == 30


def test_lower_stack_shows_when_the_higher_schedule_is_not_running() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)]), at("00:00"))
    install(store, 0, payload(2, 1, CPMAX, [(0, 30)], start="2024-01-01T02:00:00Z", duration=3600), at("00:00"))
    assert [limits_at(store, EL, at(c)).site_a for c in ("01:59:59", "02:00", "02:59:59", "03:00")] == [10, 30, 30, 10]
    assert next_change(store, EL, at("01:00")) == at("02:00")
    assert next_change(store, EL, at("02:30")) == at("03:00")


def test_validity_window_gates_a_profile() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)]), at("00:00"))
    install(store, 0, payload(2, 5, CPMAX, [(0, 20)], validFrom="2024-01-01T08:00:00Z",
                                 validTo="2024-01-01T09:00:00Z"), at("00:00"))
    assert [limits_at(store, EL, at(c)).site_a for c in ("07:59", "08:00", "08:59", "09:00")] == [10, 20, 20, 10]


def test_a_tx_profile_at_level_zero_beats_a_tx_default_at_level_five() -> None:
    store = make_store()
    install(store, 0, payload(1, 5, TXDEF, [(0, 16)]), at("00:00"))
    store.start_transaction(2, at("00:30"), 9)
    install(store, 2, payload(2, 0, TX, [(0, 6)]), at("00:31"))
    assert limits_at(store, EL, at("00:40")).connectors_a == (16, 6)


def test_connector_default_at_a_lower_level_loses_to_the_charge_point_default() -> None:
    store = make_store()
    install(store, 0, payload(1, 2, TXDEF, [(0, 16)]), at("00:00"))
    install(store, 1, payload(2, 1, TXDEF, [(0, 10)]), at("00:00"))
    assert limits_at(store, EL, at("01:00")).connectors_a == (16, 16)


def test_connector_limit_is_the_minimum_of_site_and_transaction_level() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 20)]), at("00:00"))
    install(store, 1, payload(2, 0, TXDEF, [(0, 32)]), at("00:00"))
    install(store, 2, payload(3, 0, TXDEF, [(0, 8)]), at("00:00"))
    limits = limits_at(store, EL, at("01:00"))
    assert limits.site_a == 20 and limits.connectors_a == (20, 8)


def test_tx_default_installed_during_a_transaction_applies_to_it() -> None:
    """Errata §3.8, OCTT TC_082."""
    store = make_store()
    store.start_transaction(1, at("00:00"), 3)
    install(store, 1, payload(1, 0, TXDEF, [(0, 12)]), at("00:05"))
    assert limits_at(store, EL, at("00:06")).connectors_a[0] == 12


# --- Recurring ------------------------------------------------------------------------------------------------------

def test_daily_window_across_midnight() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10), (10800, 20)], kind="Recurring", recurrency="Daily",
                              start="2024-01-01T22:00:00Z", duration=4 * 3600), at("00:00"))
    samples = {("21:59", "2024-01-01"): None, ("22:00", "2024-01-01"): 10, ("23:59", "2024-01-01"): 10,
               ("00:30", "2024-01-02"): 10, ("01:00", "2024-01-02"): 20, ("02:00", "2024-01-02"): None,
               ("22:00", "2024-01-05"): 10, ("01:30", "2024-01-06"): 20}
    for (clock, day), expected in samples.items():
        assert limits_at(store, EL, at(clock, day)).site_a == expected, (day, clock)
    assert next_change(store, EL, at("12:00", "2024-01-03")) == at("22:00", "2024-01-03")


def test_recurring_profile_is_not_active_before_its_start_schedule() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)], kind="Recurring", recurrency="Daily",
                              start="2024-01-05T06:00:00Z"), at("00:00"))
    assert limits_at(store, EL, at("07:00", "2024-01-04")).site_a is None
    assert limits_at(store, EL, at("07:00", "2024-01-05")).site_a == 10


def test_weekly_repeats_on_the_same_weekday() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)], kind="Recurring", recurrency="Weekly",
                              start="2024-01-01T08:00:00Z", duration=10 * 3600), at("00:00"))
    assert limits_at(store, EL, at("09:00", "2024-01-08")).site_a == 10  # Monday, a week later
    assert limits_at(store, EL, at("09:00", "2024-01-09")).site_a is None  # Tuesday
    assert limits_at(store, EL, at("09:00", "2024-01-14")).site_a is None  # Sunday
    assert limits_at(store, EL, at("17:59", "2024-01-29")).site_a == 10


def test_a_period_beyond_the_recurrence_never_runs() -> None:
    """Spec: remainder periods past the recurrence length SHALL NOT be executed."""
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10), (90_000, 5)], kind="Recurring", recurrency="Daily",
                              duration=100_000), at("00:00"))
    assert limits_at(store, EL, at("01:00", "2024-01-02")).site_a == 10


def test_daily_with_short_duration_falls_back_to_the_lower_level() -> None:
    """libocpp DailyRecurringAltApproachingEnd: a 10 h daily window at stack 5 over 6 A at stack 1."""
    store = make_store()
    install(store, 0, payload(1, 1, TXDEF, [(0, 6)], kind="Relative"), at("00:00"))
    install(store, 0, payload(2, 5, TXDEF, [(0, 16)], kind="Recurring", recurrency="Daily",
                              start="2024-01-01T08:00:00Z", duration=36_000), at("00:00"))
    assert [limits_at(store, EL, at(c, "2024-01-03")).connectors_a[0] for c in ("07:59", "08:00", "17:59", "18:00")] \
        == [6, 16, 16, 6]


# --- Relative -------------------------------------------------------------------------------------------------------

def test_relative_default_starts_at_the_transaction() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, TXDEF, [(0, 16), (600, 8)], kind="Relative"), at("00:00"))
    store.start_transaction(1, at("10:00"), 1)
    limits = limits_at(store, EL, at("10:11"))
    assert limits.connectors_a == (8, 16)  # connector 2 has no transaction: as if one started now
    assert next_change(store, EL, at("10:05")) == at("10:10")


def test_relative_default_without_a_transaction_never_changes_on_its_own() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, TXDEF, [(0, 16), (600, 8)], kind="Relative"), at("00:00"))
    assert limits_at(store, EL, at("05:00")).connectors_a == (16, 16)
    assert next_change(store, EL, at("05:00")) == at("05:00") + NEXT_CHANGE_HORIZON_S


def test_composite_anchors_a_relative_default_at_the_request_without_a_transaction() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, TXDEF, [(0, 16), (600, 8)], kind="Relative"), at("00:00"))
    assert periods(composite(store, EL, 1, at("05:00"), 3600)) == [(0, 16), (600, 8)]


# --- Units ----------------------------------------------------------------------------------------------------------

def test_watts_on_a_single_phase_charger() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 2300)], unit="W"), at("00:00"))
    assert limits_at(store, electrical(phases=1), at("01:00")).connectors_a == (10, None)


def test_number_phases_one_does_not_triple_the_power_of_a_three_phase_charger() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 6900, 1)], unit="W"), at("00:00"))
    assert limits_at(store, EL, at("01:00")).connectors_a[0] == pytest.approx(10)


def test_amps_are_per_phase_whatever_number_phases_says() -> None:
    """Errata §3.34: 16 A stays 16 A per phase."""
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 16, 1)]), at("00:00"))
    assert limits_at(store, electrical(phases=1), at("01:00")).connectors_a[0] == 16


def test_composite_in_watts_from_an_amp_profile() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 16)]), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60, RateUnit.W)) == [(0, 11040)]


def test_composite_in_watts_counts_the_phases_of_the_period() -> None:
    """16 A on one phase is 3,680 W, even on a 3-phase charger (issue 12 measured 11,040 W)."""
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 16, 1)]), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60, RateUnit.W)) == [(0, 3680)]
    assert periods(composite(store, EL, 1, at("01:00"), 60, RateUnit.A)) == [(0, 16)]
    # Connector 0 sums each connector's own power: 3,680 W + 32 A on three phases for the other one.
    assert periods(composite(store, EL, 0, at("01:00"), 60, RateUnit.W)) == [(0, 3680 + 22080)]


def test_composite_in_watts_never_counts_more_phases_than_are_wired() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 16, 3)]), at("00:00"))
    assert periods(composite(store, electrical(phases=1), 1, at("01:00"), 60, RateUnit.W)) == [(0, 3680)]


def test_a_watt_profile_reads_back_in_watts_whatever_its_number_phases() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 6900, 1)], unit="W"), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60, RateUnit.W)) == [(0, 6900)]


# --- Transactions ---------------------------------------------------------------------------------------------------

def test_tx_profiles_end_with_their_transaction() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, TXDEF, [(0, 16)]), at("00:00"))
    store.start_transaction(1, at("00:10"), 4)
    install(store, 1, payload(2, 0, TX, [(0, 6)]), at("00:11"))
    install(store, 1, payload(3, 1, TX, [(0, 7)], transactionId=4), at("00:12"))
    assert store.end_transaction(1) == (2, 3)
    assert [i.profile.id for i in store.profiles] == [1]
    assert limits_at(store, EL, at("00:20")).connectors_a[0] == 16


def test_offline_transaction_takes_tx_profiles_once_its_id_is_known() -> None:
    store = make_store()
    store.start_transaction(1, at("00:00"))
    early = store.set_charging_profile(1, profile(1, 0, TX, transactionId=77), at("00:01"))
    assert early.status is SetStatus.REJECTED and "not known yet" in (early.reason or "")
    install(store, 1, payload(2, 0, TX, [(0, 9)]), at("00:01"))  # no transactionId: the current transaction
    store.assign_transaction_id(1, 77)
    install(store, 1, payload(1, 1, TX, [(0, 8)], transactionId=77), at("00:02"))
    assert limits_at(store, EL, at("00:03")).connectors_a[0] == 8


def test_remote_start_profile_rules() -> None:
    """Spec §5.11, OCTT TC_059/TC_060."""
    store = make_store()
    assert "must be a TxProfile" in (store.remote_start_refusal(1, profile(1, 0, TXDEF)) or "")
    assert "cannot name a transactionId" in (store.remote_start_refusal(1, profile(1, 0, TX, transactionId=3))
                                               or "")
    assert "does not exist" in (store.remote_start_refusal(3, profile(1, 0, TX)) or "")
    good = profile(1, 0, TX, [(0, 10), (60, 20)], kind="Relative")
    assert store.remote_start_refusal(1, good) is None
    store.start_transaction(1, at("09:00"), None, tx_profile=good)
    assert limits_at(store, EL, at("09:00:30")).connectors_a[0] == 10
    assert limits_at(store, EL, at("09:01")).connectors_a[0] == 20


def test_a_new_transaction_on_a_busy_connector_ends_the_old_one() -> None:
    store = make_store()
    store.start_transaction(1, at("00:00"), 1)
    install(store, 1, payload(1, 0, TX, [(0, 6)]), at("00:01"))
    store.start_transaction(1, at("01:00"), 2)
    assert store.profiles == () and store.transactions[1].transaction_id == 2


# --- ClearChargingProfile -------------------------------------------------------------------------------------------

def _populated() -> ProfileStore:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX), at("00:00"))
    install(store, 0, payload(2, 1, TXDEF), at("00:00"))
    install(store, 1, payload(3, 1, TXDEF), at("00:00"))
    install(store, 2, payload(4, 2, TXDEF), at("00:00"))
    return store


@pytest.mark.parametrize(("filters", "cleared"), [
    ({"profile_id": 3}, (3,)),
    ({"profile_id": 3, "connector_id": 2, "purpose": Purpose.CHARGE_POINT_MAX}, (3,)),  # other filters ignored
    ({"connector_id": 0}, (1, 2)),
    ({"connector_id": 1}, (3,)),
    ({"purpose": Purpose.TX_DEFAULT}, (2, 3, 4)),
    ({"stack_level": 1}, (2, 3)),
    ({"purpose": Purpose.TX_DEFAULT, "stack_level": 1}, (2, 3)),  # OCTT TC_067
    ({"connector_id": 0, "purpose": Purpose.TX_DEFAULT, "stack_level": 1}, (2,)),
])
def test_clear_filters(filters: dict[str, Any], cleared: tuple[int, ...]) -> None:
    store = _populated()
    outcome = store.clear_charging_profile(**filters)
    assert outcome.status is ClearStatus.ACCEPTED and outcome.cleared == cleared
    assert sorted(i.profile.id for i in store.profiles) == sorted({1, 2, 3, 4} - set(cleared))


def test_clear_unknown_id_and_clear_all_of_nothing_are_unknown() -> None:
    assert _populated().clear_charging_profile(profile_id=99).status is ClearStatus.UNKNOWN
    assert make_store().clear_charging_profile().status is ClearStatus.UNKNOWN


# --- GetCompositeSchedule -------------------------------------------------------------------------------------------

def test_composite_without_profiles_reports_the_rating_not_zero() -> None:
    result = composite(make_store(), EL, 2, at("01:00:00.7"), 300)
    assert result.status is CompositeStatus.ACCEPTED and periods(result) == [(0, 32)]
    assert result.start == at("01:00")
    assert composite(make_store(), EL, 0, at("01:00"), 300).periods[0].limit == 64  # 2 x 32 A, below 100 A


def test_composite_for_connector_zero_sums_connectors_under_the_site_cap() -> None:
    store = make_store()
    install(store, 1, payload(1, 0, TXDEF, [(0, 10)]), at("00:00"))
    install(store, 2, payload(2, 0, TXDEF, [(0, 12)]), at("00:00"))
    assert periods(composite(store, EL, 0, at("01:00"), 60)) == [(0, 22)]
    install(store, 0, payload(3, 0, CPMAX, [(0, 16)]), at("00:00"))
    assert periods(composite(store, EL, 0, at("01:00"), 60)) == [(0, 16)]


@pytest.mark.parametrize(("connector", "duration", "unit", "words"), [
    (3, 60, None, "no connector 3"),
    (1, 0, None, "at least 1 s"),
    (1, 60, RateUnit.W, "not allowed"),
])
def test_composite_refusals(connector: int, duration: int, unit: RateUnit | None, words: str) -> None:
    store = make_store(allowed_units=frozenset({RateUnit.A}))
    result = composite(store, EL, connector, at("01:00"), duration, unit)
    assert result.status is CompositeStatus.REJECTED and words in (result.reason or "")
    assert result.to_payload() == {"status": "Rejected", "connectorId": connector}


def test_composite_defaults_to_watts_when_only_power_is_allowed_and_caps_the_duration() -> None:
    store = make_store(allowed_units=frozenset({RateUnit.W}))
    result = composite(store, EL, 1, at("01:00"), 10 * MAX_COMPOSITE_S)
    assert result.unit is RateUnit.W and result.duration_s == MAX_COMPOSITE_S


def test_a_change_within_a_second_is_reported_at_the_lower_value() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10)], start="2024-01-01T01:00:10.500Z"), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60)) == [(0, 32), (10, 10)]
    install(store, 0, payload(2, 1, CPMAX, [(0, 20)], start="2024-01-01T00:00:00Z",
                              validTo="2024-01-01T01:00:20.500Z"), at("00:00"))
    assert periods(composite(store, EL, 1, at("01:00"), 60)) == [(0, 20), (20, 10)]


def test_composite_payload_is_plain_json_without_start_schedule() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, Decimal("21.4")), (60, Decimal("7.1"))],
                              start="2024-01-01T01:00:00Z"), at("00:00"))
    body = composite(store, EL, 1, at("01:00:00"), 120).to_payload()
    assert json.loads(json.dumps(body)) == {
        "status": "Accepted", "connectorId": 1, "scheduleStart": "2024-01-01T01:00:00Z",
        "chargingSchedule": {"duration": 120, "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4},
                                                        {"startPeriod": 60, "limit": 7.1}]}}


# --- Housekeeping and persistence -----------------------------------------------------------------------------------

def test_expire_drops_profiles_that_can_never_run_again() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, duration=3600), at("00:00"))
    install(store, 0, payload(2, 1, CPMAX, validTo="2024-01-01T05:00:00Z"), at("00:00"))
    install(store, 0, payload(3, 2, CPMAX, kind="Recurring", recurrency="Daily", duration=60), at("00:00"))
    assert store.expire(at("00:59")) == ()
    assert store.expire(at("06:00")) == (1, 2)
    assert [i.profile.id for i in store.profiles] == [3]


def test_absolute_without_start_schedule_starts_at_receipt_and_is_stored_that_way() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, [(0, 10), (600, 20)], start=None), at("03:00:00.4"))
    assert store.profiles[0].profile.schedule.start == at("03:00")
    reloaded = ProfileStore.from_json(store.to_json(), store.rules)
    assert limits_at(reloaded, EL, at("03:10")).site_a == 20


def test_absolute_without_start_schedule_starts_at_valid_from() -> None:
    store = make_store()
    install(store, 0, payload(1, 0, CPMAX, start=None, validFrom="2024-01-01T04:00:00Z"), at("03:00"))
    assert store.profiles[0].profile.schedule.start == at("04:00")


def test_store_round_trip_keeps_profiles_and_transactions() -> None:
    store = _populated()
    store.start_transaction(1, at("00:30:00.125"), 12)
    store.start_transaction(2, at("00:40"))
    install(store, 1, payload(9, 0, TX, [(0, 6)], kind="Relative"), at("00:31"))
    reloaded = ProfileStore.from_json(store.to_json(), store.rules)
    assert reloaded.profiles == store.profiles
    assert reloaded.transactions == store.transactions


def test_store_drops_what_belongs_to_removed_connectors() -> None:
    store = _populated()
    store.start_transaction(2, at("00:40"), 5)
    reloaded = ProfileStore.from_json(store.to_json(), ProfileRules(1))
    assert sorted(i.profile.id for i in reloaded.profiles) == [1, 2, 3]
    assert dict(reloaded.transactions) == {}


@pytest.mark.parametrize("text", ["", "[]", '{"version": 2}', '{"version": 1, "profiles": [{"connectorId": 0}]}',
                                  '{"version": 1, "profiles": [], "extra": 1}'])
def test_unreadable_store_is_refused(text: str) -> None:
    with pytest.raises(StoreFormatError):
        ProfileStore.from_json(text, ProfileRules(2))


def test_electrical_from_the_site_file() -> None:
    site, _ = parse_site({"installation_limit_a": 63, "network_limit_a": 40, "supply": {"voltage_v": 240},
                          "chargers": [{"id": "a", "profile": "p32", "transport": {"type": "tcp", "host": "h"},
                                        "breaker_limit_a": 20, "phases": 1},
                                       {"id": "b", "profile": "p32", "transport": {"type": "tcp", "host": "h"}}]},
                         "site.yaml", lambda name: 32.0)
    assert Electrical.from_site(site, lambda name: 32.0) == Electrical(
        240.0, 3, 63.0, (ConnectorRating(1, 20.0), ConnectorRating(3, 32.0)))


def test_next_change_of_an_empty_store_is_none() -> None:
    store = make_store()
    assert next_change(store, EL, at("00:00")) is None
    assert limits_at(store, EL, at("00:00")).connectors_a == (None, None)
