"""Combining limit sources: the least wins, the binding source is named, silent sources never mean unlimited."""

from drivers.model import MeterReading
from gateway.core.limits import (
    LimitSource,
    LimitSources,
    MeterTerm,
    bms_fallback_in_force,
    bms_watchdog_deadline,
    effective_limits,
    other_load_a,
)


def test_least_source_binds_and_is_named() -> None:
    out = effective_limits(LimitSources(installation_a=100, network_a=80, circuits_a={"garage": 40}))
    assert out.node_limits_a == {"site": (80, 80, 80), "garage": (40, 40, 40)}
    assert out.site_source is LimitSource.NETWORK
    capped = effective_limits(LimitSources(installation_a=100, network_a=80, circuits_a={},
                                           ocpp_site_a=(50, 60, 70), bms_fallback_a=55))
    assert capped.node_limits_a["site"] == (50, 55, 55)
    assert capped.site_source is LimitSource.OCPP


def test_meter_turns_other_load_into_headroom_and_falls_back_when_silent() -> None:
    term = MeterTerm(node="site", node_limit_a=63, other_load_a=(20, 5, 0), margin_a=1, fallback_a=10)
    out = effective_limits(LimitSources(installation_a=100, network_a=100, circuits_a={}, meter=term))
    assert out.node_limits_a["site"] == (42, 57, 62)
    assert out.site_source is LimitSource.SITE_METER
    silent = MeterTerm(node="site", node_limit_a=63, other_load_a=None, margin_a=1, fallback_a=10)
    assert effective_limits(LimitSources(100, 100, {}, meter=silent)).node_limits_a["site"] == (10, 10, 10)


def test_meter_on_a_sub_circuit_limits_that_node_only() -> None:
    term = MeterTerm(node="garage", node_limit_a=32, other_load_a=(30, 0, 0), margin_a=0, fallback_a=0)
    out = effective_limits(LimitSources(100, 80, {"garage": 25}, meter=term))
    assert out.node_limits_a["garage"] == (2, 25, 25)
    assert out.node_limits_a["site"] == (80, 80, 80)


def test_other_load_is_never_negative_and_invalid_readings_are_silence() -> None:
    assert other_load_a(MeterReading(current_a=(10, 10, 10)), (12, 4, 0)) == (0, 6, 10)
    assert other_load_a(MeterReading(current_a=(10, None, 10)), (0, 0, 0)) is None
    assert other_load_a(MeterReading(current_a=(10, 10, 10), invalid=("current_a",)), (0, 0, 0)) is None


def test_bms_watchdog() -> None:
    assert not bms_fallback_in_force(now=100, watchdog_s=0, last_heartbeat_s=None)
    assert not bms_fallback_in_force(now=100, watchdog_s=30, last_heartbeat_s=80)
    assert bms_fallback_in_force(now=100, watchdog_s=10, last_heartbeat_s=80)


def test_the_named_source_does_not_flap_between_two_nearly_equal_limits() -> None:
    hovering = MeterTerm(node="site", node_limit_a=63, other_load_a=(23.7, 23, 23), margin_a=0, fallback_a=0)
    sources = LimitSources(100, 100, {}, ocpp_site_a=(40, 40, 40), meter=hovering)
    assert effective_limits(sources).site_source is LimitSource.SITE_METER
    kept = effective_limits(sources, previous=LimitSource.OCPP)
    assert kept.site_source is LimitSource.OCPP
    assert kept.node_limits_a["site"] == (39.3, 40, 40)  # the limits are still the least of all
    falling = MeterTerm(node="site", node_limit_a=63, other_load_a=(30, 23, 23), margin_a=0, fallback_a=0)
    moved = effective_limits(LimitSources(100, 100, {}, ocpp_site_a=(40, 40, 40), meter=falling),
                             previous=LimitSource.OCPP)
    assert moved.site_source is LimitSource.SITE_METER


def test_the_bms_limit_stands_in_for_the_network_limit_and_is_named() -> None:
    raised = effective_limits(LimitSources(installation_a=100, network_a=40, circuits_a={}, bms_a=60))
    assert raised.node_limits_a["site"] == (60, 60, 60) and raised.site_source is LimitSource.BMS
    capped = effective_limits(LimitSources(installation_a=50, network_a=40, circuits_a={}, bms_a=60))
    assert capped.node_limits_a["site"] == (50, 50, 50) and capped.site_source is LimitSource.INSTALLATION
    tie = effective_limits(LimitSources(100, 40, {}, bms_a=30, ocpp_site_a=(30, 30, 30)))
    assert tie.site_source is LimitSource.OCPP  # as specific as the installer's network limit, no more
    fallback = effective_limits(LimitSources(100, 40, {}, bms_a=30, bms_fallback_a=10))
    assert fallback.node_limits_a["site"] == (10, 10, 10) and fallback.site_source is LimitSource.BMS_FALLBACK


def test_the_bms_watchdog_deadline() -> None:
    assert bms_watchdog_deadline(watchdog_s=10, last_heartbeat_s=80) == 90
    assert bms_watchdog_deadline(watchdog_s=0, last_heartbeat_s=80) is None
    assert not bms_fallback_in_force(now=89.999, watchdog_s=10, last_heartbeat_s=80)
    assert bms_fallback_in_force(now=90, watchdog_s=10, last_heartbeat_s=80)  # from the deadline on
