"""The virtual site's physics and accounting, on cases small enough to check by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from drivers.model import ChargerReading, Iec61851State
from drivers.sim.vehicle import VehicleSpec
from gateway.sim.virtual_site import (
    ChargerBus,
    LimitChange,
    Outage,
    PhaseLimits,
    SiteCharger,
    SiteSetup,
    run_site,
)

V = 230.0


class Script:
    """Writes setpoints (and fail-safe currents) at given ticks, and records every poll and write outcome."""

    def __init__(self, setpoints: Mapping[float, Mapping[str, float]],
                 failsafe: Mapping[float, Mapping[str, float]] | None = None) -> None:
        self.setpoints = setpoints
        self.failsafe = failsafe or {}
        self.polls: dict[float, dict[str, ChargerReading | None]] = {}
        self.writes: list[tuple[float, str, float, bool]] = []
        self.limits: dict[float, dict[str, PhaseLimits]] = {}

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.polls[now] = dict(observations)
        self.limits[now] = dict(limits)
        for cid, amps in self.failsafe.get(now, {}).items():
            self.writes.append((now, f"failsafe:{cid}", amps, bus.write_failsafe(cid, amps)))
        for cid, amps in self.setpoints.get(now, {}).items():
            self.writes.append((now, cid, amps, bus.write_current(cid, amps)))


def car(name: str = "car", **kw: Any) -> VehicleSpec:
    """A 1-phase car with a big battery (no taper in these short runs) and a 2 s lag, unless told otherwise."""
    values: dict[str, Any] = {"onboard_limit_a": 32.0, "phases": 1, "battery_kwh": 100.0, "soc_start": 0.3,
                              "lag_s": 2.0}
    return VehicleSpec(name, **(values | kw))


def one_phase(cid: str, *visits: VehicleSpec, phase: int = 0, **kw: Any) -> SiteCharger:
    return SiteCharger(id=cid, nodes=("site",), site_phases=(phase,), max_current_a=32.0, visits=visits, **kw)


def site(*chargers: SiteCharger, limit: float = 10.0, duration: float = 10.0, **kw: Any) -> SiteSetup:
    return SiteSetup(name="t", chargers=chargers, node_limits_a={"site": (limit, limit, limit)},
                     duration_s=duration, **kw)


def test_over_limit_integral_energy_and_peak_of_one_car() -> None:
    # 16 A offered at t=0 on a 10 A site; the car follows at t=2 and draws until the run ends at t=10.
    result = run_site(site(one_phase("a", car())), Script({0.0: {"a": 16.0}}))
    assert result.over_limit_amp_seconds == pytest.approx((16 - 10) * 8)
    assert result.over_limit_strict_amp_seconds == pytest.approx((16 - 10) * 8)
    assert result.over_limit_by_constraint == {"site/L1": pytest.approx(48.0)}
    assert result.cars[0].energy_wh == pytest.approx(16 * V * 8 / 3600)
    assert result.peak_a == (16.0, 0.0, 0.0)
    assert [row[0] for row in result.trace] == [0, 0, 16, 16, 16, 16, 16, 16, 16, 16]


def test_a_lag_that_is_not_a_whole_tick_is_integrated_exactly() -> None:
    result = run_site(site(one_phase("a", car(lag_s=2.5))), Script({0.0: {"a": 16.0}}))
    assert result.over_limit_amp_seconds == pytest.approx(6 * 7.5)
    assert result.cars[0].energy_wh == pytest.approx(16 * V * 7.5 / 3600)


def test_shifting_current_with_a_slow_car_overshoots_for_the_lag_difference() -> None:
    # At t=10, a (lag 5) goes 16 -> 0 and b (lag 1) 0 -> 16 in the same tick, limit 20 A:
    # both draw from t=11 until a comes down at t=15: (32 - 20) x 4 s.
    setup = site(one_phase("a", car("A", lag_s=5)), one_phase("b", car("B", lag_s=1, arrival_s=5)),
                 limit=20.0, duration=20.0)
    result = run_site(setup, Script({0.0: {"a": 16.0}, 10.0: {"a": 0.0, "b": 16.0}}))
    assert result.over_limit_amp_seconds == pytest.approx(12 * 4)


def test_a_lowered_limit_counts_after_the_grace_and_the_strict_figure_counts_at_once() -> None:
    drop = LimitChange(at_s=5.0, node="site", limits_a=(10.0, 10.0, 10.0))
    prompt = run_site(site(one_phase("a", car()), limit=20.0, duration=20.0, limit_changes=(drop,)),
                      Script({0.0: {"a": 16.0}, 5.0: {"a": 10.0}}))
    # The car follows the lower offer at t=7, within the 5 s grace: nothing counts, 2 s x 6 A strictly.
    assert prompt.over_limit_amp_seconds == 0
    assert prompt.over_limit_strict_amp_seconds == pytest.approx(6 * 2)
    late = run_site(site(one_phase("a", car()), limit=20.0, duration=20.0, limit_changes=(drop,)),
                    Script({0.0: {"a": 16.0}, 9.0: {"a": 10.0}}))
    # Lowered at t=9, followed at t=11: one second past the grace (t=10) counts.
    assert late.over_limit_amp_seconds == pytest.approx(6 * 1)
    assert late.over_limit_strict_amp_seconds == pytest.approx(6 * 6)


def test_the_policy_sees_a_new_limit_in_the_tick_it_changes() -> None:
    script = Script({})
    run_site(site(one_phase("a"), duration=4.0,
                  limit_changes=(LimitChange(2.0, "site", (7.0, 8.0, 9.0)),)), script)
    assert script.limits[1.0]["site"] == (10.0, 10.0, 10.0)
    assert script.limits[2.0]["site"] == (7.0, 8.0, 9.0)


def test_completion_time_and_unfinished_cars() -> None:
    # Needs 0.1 x 1 kWh = 100 Wh at 10 A x 230 V: full 1 + 156.5 s after arrival, i.e. within the tick ending at 158.
    quick = car("quick", battery_kwh=1.0, soc_start=0.5, soc_target=0.6, lag_s=1.0)
    leaves = car("leaves", arrival_s=10.0, departure_s=100.0)
    stays = car("stays", arrival_s=50.0)
    setup = site(one_phase("a", quick), one_phase("b", leaves), one_phase("c", stays), limit=100.0, duration=300.0)
    result = run_site(setup, Script({0.0: {"a": 10.0, "b": 10.0, "c": 10.0}}))
    by_name = {c.name: c for c in result.cars}
    assert by_name["quick"].finished and by_name["quick"].completion_s == 158.0
    assert by_name["quick"].energy_wh == pytest.approx(100.0)
    assert not by_name["leaves"].finished and by_name["leaves"].completion_s == 90.0
    assert by_name["leaves"].energy_wh == pytest.approx(10 * V * (100 - 12) / 3600)
    assert not by_name["stays"].finished and by_name["stays"].completion_s == 250.0
    assert result.unfinished == 2
    assert result.mean_completion_h == pytest.approx((158 + 90 + 250) / 3 / 3600)


def test_a_car_waits_from_arrival_until_it_first_draws_current() -> None:
    # "early" is offered 10 A from the start and follows after its 2 s lag; "late" arrives at 10 s and is offered
    # current only at 60 s (3 s lag); "never" is never offered any; "full" needs nothing.
    setup = site(one_phase("a", car("early")), one_phase("b", car("late", arrival_s=10.0, lag_s=3.0)),
                 one_phase("c", car("never", arrival_s=20.0)),
                 one_phase("d", car("full", soc_start=0.8, soc_target=0.8)), limit=100.0, duration=300.0)
    result = run_site(setup, Script({0.0: {"a": 10.0}, 60.0: {"b": 10.0}}))
    waited = {c.name: c.waited_s for c in result.cars}
    assert waited == {"early": 2.0, "late": 53.0, "never": 280.0, "full": 0.0}
    assert result.longest_wait_h == pytest.approx(280.0 / 3600)


def test_a_charger_takes_its_next_car_after_the_first_has_left() -> None:
    first = car("first", departure_s=20.0)
    second = car("second", arrival_s=30.0)
    script = Script({0.0: {"a": 10.0}})
    result = run_site(site(one_phase("a", first, second), limit=100.0, duration=40.0), script)
    assert [c.name for c in result.cars] == ["first", "second"]
    assert result.cars[0].energy_wh == pytest.approx(10 * V * 18 / 3600)
    assert result.cars[1].energy_wh == pytest.approx(10 * V * 8 / 3600)
    reading = script.polls[25.0]["a"]
    assert reading is not None and reading.state is Iec61851State.A
    assert reading.energy_wh == pytest.approx(10 * V * 18 / 3600)


def test_an_unreachable_charger_answers_nothing_then_falls_back_to_its_failsafe() -> None:
    outage = Outage("a", 10.0, 100.0)
    script = Script({0.0: {"a": 16.0, "b": 16.0}, 50.0: {"a": 6.0}},
                    failsafe={0.0: {"a": 8.0, "b": 8.0}})
    setup = site(one_phase("a", car("A")), one_phase("b", car("B"), phase=1, has_failsafe=False),
                 limit=100.0, duration=120.0, outages=(outage, Outage("b", 10.0, 100.0)))
    result = run_site(setup, script)
    assert script.polls[9.0]["a"] is not None and script.polls[10.0]["a"] is None
    assert (50.0, "a", 6.0, False) in script.writes  # writes fail while it is unreachable
    # Last contact at t=9, timeout 30 s: from t=39 it offers its fail-safe 8 A; the car follows at t=41.
    col_a, col_b = result.trace_keys.index("site/L1"), result.trace_keys.index("site/L2")
    assert result.trace[40][col_a] == 16.0 and result.trace[41][col_a] == 8.0
    # Without a fail-safe it keeps its last setpoint; after the outage the fallen-back one keeps 8 A until written.
    assert result.trace[110][col_b] == 16.0
    back = script.polls[100.0]["a"]
    assert back is not None and back.setpoint_a == 8.0 and back.current_a == (8.0, 0.0, 0.0)


def test_a_short_outage_does_not_trip_the_watchdog() -> None:
    script = Script({0.0: {"a": 16.0}}, failsafe={0.0: {"a": 6.0}})
    result = run_site(site(one_phase("a", car()), limit=100.0, duration=60.0, outages=(Outage("a", 10.0, 35.0),)),
                      script)
    assert all(row[0] == 16.0 for row in result.trace[2:])


def test_phase_rotation_and_sub_circuits_place_current_on_the_right_constraint() -> None:
    # A 1-phase car on a 3-phase charger whose L1 lands on site L2, under board "b" (limit 5 A on L2 only).
    van = car("van", phases=1)
    three = car("three", phases=3)
    setup = SiteSetup(
        name="t", duration_s=10.0,
        node_limits_a={"site": (100.0, 100.0, 100.0), "b": (100.0, 5.0, 100.0)},
        chargers=(SiteCharger("a", nodes=("b", "site"), site_phases=(1, 2, 0), max_current_a=32.0, visits=(van,)),
                  SiteCharger("c", nodes=("site",), site_phases=(0,), max_current_a=32.0, visits=(three,))))
    script = Script({0.0: {"a": 10.0, "c": 10.0}})
    result = run_site(setup, script)
    assert result.over_limit_by_constraint == {"b/L2": pytest.approx(5 * 8)}
    assert result.peak_a == (10.0, 10.0, 0.0)
    # The 3-phase car on the 1-phase charger draws on one phase only, and its energy says so.
    by_name = {c.name: c for c in result.cars}
    assert by_name["three"].energy_wh == pytest.approx(10 * V * 8 / 3600)
    reading = script.polls[5.0]["a"]
    assert reading is not None and reading.current_a == (10.0, 0.0, 0.0) and reading.state is Iec61851State.C


def test_a_device_refuses_a_current_above_its_maximum_or_not_a_number() -> None:
    script = Script({0.0: {"a": 40.0}, 1.0: {"a": float("nan")}, 2.0: {"a": -1.0}, 3.0: {"a": 32.0}})
    run_site(site(one_phase("a", car()), limit=100.0), script)
    assert [ok for *_, ok in script.writes] == [False, False, False, True]


@pytest.mark.parametrize("bad", [
    {"visits": (car("x", departure_s=100.0), car("y", arrival_s=50.0))},
    {"visits": (car("x", lag_s=0.0),)},
    {"nodes": ("nowhere", "site")},
    {"site_phases": (0, 0, 1)},
])
def test_a_setup_that_cannot_be_simulated_is_refused(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"id": "a", "nodes": ("site",), "site_phases": (0,), "max_current_a": 32.0}
    with pytest.raises(ValueError, match="site 't'"):
        site(SiteCharger(**(fields | bad)))
