"""The benchmark: the optimum's linear program, the baselines, powershare's safety on every scenario, the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from drivers.model import ChargerReading
from drivers.sim.vehicle import VehicleSpec
from gateway.cli.main import main
from gateway.sim.bench.optimum import solve_optimum
from gateway.sim.bench.peers import PEERS, EvccLike, EverestLike, OpenEmsLike
from gateway.sim.bench.policies import NaiveEqual, StaticSplit, equal_shares
from gateway.sim.bench.powershare import Powershare
from gateway.sim.bench.scenarios import SCENARIOS, build
from gateway.sim.bench.suite import run_policy
from gateway.sim.virtual_site import (
    ChargerBus,
    LimitChange,
    Outage,
    PhaseLimits,
    Policy,
    SiteCharger,
    SiteSetup,
    run_site,
)
from gateway.site.config import ControlConfig

V = 230.0


def lone_car(spec: VehicleSpec, *, limit: float = 100.0, duration: float = 3600.0, phases: int = 1,
             limit_changes: tuple[LimitChange, ...] = ()) -> SiteSetup:
    charger = SiteCharger("a", nodes=("site",), site_phases=(0, 1, 2)[:phases], max_current_a=32.0, visits=(spec,))
    return SiteSetup(name="lone", chargers=(charger,), node_limits_a={"site": (limit, limit, limit)},
                     duration_s=duration, limit_changes=limit_changes)


def test_optimum_of_one_car_that_leaves_before_its_taper_is_limit_times_stay() -> None:
    # 16 A on one phase from 30 s (mid-step) until it leaves at 2000 s; 60 kWh from 30 % never reaches 80 %.
    spec = VehicleSpec("car", onboard_limit_a=32, phases=1, battery_kwh=60, soc_start=0.3, arrival_s=30,
                       departure_s=2000)
    result = solve_optimum(lone_car(spec, limit=16.0))
    assert result.cars[0].energy_wh == pytest.approx(16 * V * (2000 - 30) / 3600, rel=1e-6)
    assert result.unfinished == 1 and result.cars[0].completion_s == pytest.approx(2000 - 30)
    assert result.cars[0].waited_s == 0.0  # it charges from the step it arrives in


def test_optimum_of_one_car_with_time_to_spare_is_what_its_battery_needs() -> None:
    # 3-phase 16 A, 20 kWh from 50 % to 100 %: through the whole taper, in well under the 4 hours it has.
    spec = VehicleSpec("car", onboard_limit_a=16, phases=3, battery_kwh=20, soc_start=0.5, soc_target=1.0)
    setup = lone_car(spec, duration=4 * 3600.0, phases=3)
    result = solve_optimum(setup)
    assert result.cars[0].energy_wh == pytest.approx(10_000.0, rel=1e-6)
    assert result.cars[0].finished
    # The real car, offered all it takes, needs the same energy and (taper floored at 6 A) no less time.
    simulated = run_site(setup, StaticSplit(setup))
    assert simulated.cars[0].energy_wh == pytest.approx(10_000.0, rel=1e-6)
    assert result.cars[0].completion_s <= simulated.cars[0].completion_s


def test_optimum_holds_a_lowered_limit_after_the_grace() -> None:
    spec = VehicleSpec("car", onboard_limit_a=32, phases=1, battery_kwh=100, soc_start=0.1)
    drop = LimitChange(at_s=600.0, node="site", limits_a=(10.0, 10.0, 10.0))
    result = solve_optimum(lone_car(spec, limit=20.0, duration=1200.0, limit_changes=(drop,)))
    assert result.cars[0].energy_wh == pytest.approx((20 * 605 + 10 * 595) * V / 3600, rel=1e-6)


def test_equal_shares_respect_every_node_and_phase_and_give_nothing_below_six_amps() -> None:
    def charger(cid: str, nodes: tuple[str, ...], phases: tuple[int, ...]) -> SiteCharger:
        return SiteCharger(cid, nodes=nodes, site_phases=phases, max_current_a=32.0)

    chargers = [charger("a", ("b", "site"), (0, 1, 2)), charger("c", ("b", "site"), (1,)),
                charger("d", ("site",), (2,))]
    shares = equal_shares(chargers, {"site": (100.0, 40.0, 64.0), "b": (100.0, 15.0, 100.0)})
    assert shares == {"a": 7.0, "c": 7.0, "d": 32.0}  # 15 / 2 on board b L2 -> 7.5 -> 7; d capped at its 32 A
    assert equal_shares(chargers, {"site": (100.0, 100.0, 100.0), "b": (100.0, 11.0, 100.0)})["a"] == 0.0


def shift_site() -> SiteSetup:
    """One car charging alone when a second arrives; the first car is slow to follow (5 s), the second quick (1 s)."""
    slow = VehicleSpec("slow", onboard_limit_a=32, phases=1, battery_kwh=100, soc_start=0.2, lag_s=5)
    quick = VehicleSpec("quick", onboard_limit_a=32, phases=1, battery_kwh=100, soc_start=0.2, lag_s=1,
                        arrival_s=60)
    chargers = tuple(SiteCharger(cid, nodes=("site",), site_phases=(0,), max_current_a=32.0, visits=(car,))
                     for cid, car in (("a", slow), ("b", quick)))
    return SiteSetup(name="shift", chargers=chargers, node_limits_a={"site": (32.0, 32.0, 32.0)}, duration_s=180.0)


def test_naive_equal_overshoots_when_shares_move_and_powershare_does_not() -> None:
    setup = shift_site()
    naive = run_site(setup, NaiveEqual(setup))
    # At t=60 naive sees b plugged in and sets a 32 -> 16 and b 0 -> 16 at once: b draws from 61, a comes down
    # at 65, so 16 A over the limit for 4 s.
    assert naive.over_limit_amp_seconds == pytest.approx(16 * 4)
    safe = run_site(setup, Powershare(setup))
    assert safe.over_limit_amp_seconds == 0
    assert safe.cars[1].energy_wh > 0  # and the second car does get current


SHORT_HOURS = 0.3


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_powershare_never_exceeds_a_limit_and_the_optimum_bounds_every_safe_policy(name: str) -> None:
    setup = build(name, hours=SHORT_HOURS)
    optimum = solve_optimum(setup)
    for policy in ("powershare", "static_split"):
        result = run_policy(policy, setup)
        assert result.over_limit_amp_seconds == 0, (policy, result.over_limit_by_constraint)
        assert result.energy_kwh <= optimum.energy_kwh * (1 + 1e-6), policy


@settings(max_examples=8, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate])
@given(name=st.sampled_from(list(SCENARIOS)), seed=st.integers(0, 10_000))
@example(name="depot-3ph", seed=421)
def test_powershare_is_safe_whatever_the_seed(name: str, seed: int) -> None:
    # depot-3ph seed 421: at t=46 c16 (lag 2.8 s) is raised 14 -> 16 A and at t=47 lowered back to 14 A; its car
    # still rises to 16 A at 48.8 s, so the decrease is booked until the car is seen to come down (or 5 s pass).
    setup = build(name, seed=seed, hours=0.1)
    policy = Powershare(setup)
    assert run_site(setup, policy).over_limit_amp_seconds == 0
    assert policy.round.violation_rounds == 0  # no round's own commands broke the booking invariant


def test_an_unreachable_charger_stays_booked_at_its_last_setpoint() -> None:
    # a (slow car, 5 s) charges at 20 A with a 10 A fail-safe on a 40 A site and stops answering at t=100. Its
    # watchdog drops it to 10 A at t=129, but a device may resume its last setpoint the instant it hears the
    # gateway again, so a stays booked at 20 A until it answers: b keeps 20 A and nothing goes over.
    slow = VehicleSpec("slow", onboard_limit_a=32, phases=1, battery_kwh=100, soc_start=0.2, lag_s=5)
    quick = VehicleSpec("quick", onboard_limit_a=32, phases=1, battery_kwh=100, soc_start=0.2, lag_s=1)
    chargers = (SiteCharger("a", ("site",), (0,), 32.0, visits=(slow,)),
                SiteCharger("b", ("site",), (0,), 32.0, visits=(quick,)),
                SiteCharger("c", ("site",), (0,), 32.0), SiteCharger("d", ("site",), (0,), 32.0))
    setup = SiteSetup("fall-back", chargers, {"site": (40.0, 40.0, 40.0)}, duration_s=200.0,
                      outages=(Outage("a", 100.0, 190.0),))
    result = run_site(setup, Powershare(setup))
    assert result.over_limit_amp_seconds == 0
    assert result.trace[150][0] == 30.0  # a at its 10 A fail-safe, b at 20 A


def test_scenarios_are_the_same_for_a_seed_and_differ_between_seeds() -> None:
    for name in SCENARIOS:
        assert build(name, seed=3, hours=1) == build(name, seed=3, hours=1)
        assert build(name, seed=3, hours=1) != build(name, seed=4, hours=1)


def test_the_full_scenarios_have_the_shape_the_docs_describe() -> None:
    seed = build("seed-six")
    assert len(seed.chargers) == 6 and seed.voltage_v == 240.0 and seed.node_limits_a["site"][0] == 60.0
    depot = build("depot-3ph")
    assert len(depot.chargers) == 24 and depot.duration_s == 12 * 3600.0
    assert sum(1 for ch in depot.chargers if "board-b" in ch.nodes) == 8
    assert {car.phases for ch in depot.chargers for car in ch.visits} == {1, 3}
    scarce = build("scarce")
    assert scarce.node_limits_a["site"][0] < 6 * len(scarce.chargers)
    faults = build("faults")
    assert faults.outages and faults.limit_changes and not all(ch.has_failsafe for ch in faults.chargers)


def test_bench_cli_prints_a_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--scenario", "scarce", "--hours", "0.1", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    policies = document["scenarios"]["scarce"]["policies"]
    assert set(policies) == {"optimum", "static_split", "naive_equal", "powershare", *PEERS}
    own = policies["powershare"]
    for key in ("energy_kwh", "over_limit_amp_seconds", "mean_completion_h", "unfinished", "peak_a", "wall_s"):
        assert key in own
    assert own["energy_ratio_to_optimum"] == pytest.approx(own["energy_kwh"] / policies["optimum"]["energy_kwh"],
                                                           abs=1e-3)
    assert own["targets"]["over_limit_zero"] is True
    versus = own["versus_peers"]
    assert set(versus["ratios"]) == set(PEERS)
    for name, ratios in versus["ratios"].items():
        assert policies[name]["energy_ratio_to_optimum"] is not None
        if policies[name]["energy_kwh"] > 0:
            assert ratios["energy"] == pytest.approx(own["energy_kwh"] / policies[name]["energy_kwh"], abs=1e-3)


def test_bench_cli_runs_powershare_with_the_order_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--scenario", "scarce", "--hours", "1", "--policies", "powershare", "--order",
                 "shortest_first", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["order"] == "shortest_first"
    own = document["scenarios"]["scarce"]["policies"]["powershare"]
    setup = build("scarce", hours=1)
    expected = run_site(setup, Powershare(setup, ControlConfig(order="shortest_first")))
    fair = run_site(setup, Powershare(setup))
    # In an hour shortest_first finishes the first car (7 of 8 unfinished); fair sharing none.
    assert own["mean_completion_h"] == round(expected.mean_completion_h, 4) < round(fair.mean_completion_h, 4)
    assert own["energy_kwh"] == round(expected.energy_kwh, 3)


def test_bench_cli_without_scipy_says_what_to_install_and_runs_the_rest(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    assert main(["bench", "--scenario", "faults", "--hours", "0.05"]) == 0
    out, err = capsys.readouterr()
    assert "pip install '.[bench]'" in err
    assert "powershare" in out and "static_split" in out and "optimum" not in out


def test_bench_cli_rejects_a_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--hours", "-1"])
    assert exit_info.value.code == 2
    assert "--hours" in capsys.readouterr().err


class RecordingBus:
    """A ChargerBus in front of the virtual site that notes every write with its time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.writes: list[tuple[float, str, float]] = []
        self.failsafes: list[tuple[str, float]] = []
        self.now = 0.0
        self.bus: ChargerBus | None = None

    def step(self, now: float, observations: Mapping[str, ChargerReading | None],
             limits: Mapping[str, PhaseLimits], bus: ChargerBus) -> None:
        self.now, self.bus = now, bus
        self.policy.step(now, observations, limits, self)

    def write_current(self, charger_id: str, current_a: float) -> bool:
        assert self.bus is not None
        ok = self.bus.write_current(charger_id, current_a)
        if ok:
            self.writes.append((self.now, charger_id, current_a))
        return ok

    def write_failsafe(self, charger_id: str, current_a: float) -> bool:
        assert self.bus is not None
        self.failsafes.append((charger_id, current_a))
        return self.bus.write_failsafe(charger_id, current_a)


def test_evcc_like_regulates_one_loadpoint_per_thirty_second_tick_and_stays_within_unchanged_limits() -> None:
    # One car per charger: seed-six's second cars, squeezed into a short run, plug in before their charger's turn
    # comes to switch it off after the first car left, and draw what it still offers (that is the model too).
    for name in ("depot-3ph", "scarce"):
        setup = build(name, hours=SHORT_HOURS)
        recorder = RecordingBus(EvccLike(setup))
        result = run_site(setup, recorder)
        assert result.over_limit_amp_seconds == 0.0
        assert all(t % 30.0 == 0.0 for t, _, _ in recorder.writes)
        per_tick: dict[float, int] = {}
        for t, _, _ in recorder.writes:
            per_tick[t] = per_tick.get(t, 0) + 1
        assert max(per_tick.values()) == 1


def test_openems_like_never_raises_a_charger_within_thirty_seconds_of_its_last_change() -> None:
    setup = build("seed-six", hours=SHORT_HOURS)
    recorder = RecordingBus(OpenEmsLike(setup))
    run_site(setup, recorder)
    last: dict[str, tuple[float, float]] = {}
    for t, cid, amps in recorder.writes:
        if cid in last and amps > last[cid][1]:
            assert t - last[cid][0] >= OpenEmsLike.PAUSE_S
        last[cid] = (t, amps)


def test_everest_like_leases_expire_to_zero_and_it_splits_equally_in_half_amps() -> None:
    setup = build("faults", hours=0.1)
    recorder = RecordingBus(EverestLike(setup))
    run_site(setup, recorder)
    assert {amps for _, amps in recorder.failsafes} == {0.0}
    assert all((amps * 2).is_integer() for _, _, amps in recorder.writes)


def two_cars(known: bool) -> SiteSetup:
    """20 A for two cars: the one leaving after an hour needs 3.7 kWh (14 A); an equal 10 A share is too little."""
    leaver = VehicleSpec("leaver", onboard_limit_a=32, phases=1, battery_kwh=37, soc_start=0.5, soc_target=0.6,
                         arrival_s=0, departure_s=3600, lag_s=2)
    stayer = VehicleSpec("stayer", onboard_limit_a=32, phases=1, battery_kwh=60, soc_start=0.2, arrival_s=0,
                         departure_s=3 * 3600 if known else None, lag_s=3)
    chargers = (SiteCharger("a", ("site",), (0,), 32.0, visits=(leaver,)),
                SiteCharger("b", ("site",), (0,), 32.0, visits=(stayer,)))
    return SiteSetup(name="two", chargers=chargers, node_limits_a={"site": (20.0, 20.0, 20.0)},
                     duration_s=3 * 3600, needs_known=known)


def test_powershare_with_departures_known_finishes_the_early_leaver_and_without_shares_as_before() -> None:
    unknown = run_policy("powershare", two_cars(known=False))
    known = run_policy("powershare", two_cars(known=True))
    leaver = {r.name: r for r in unknown.cars}["leaver"]
    assert not leaver.finished
    assert {r.name: r for r in known.cars}["leaver"].finished
    assert known.over_limit_amp_seconds == 0.0 and unknown.over_limit_amp_seconds == 0.0
    assert known.energy_kwh >= 0.98 * solve_optimum(two_cars(known=True)).energy_kwh


def crowded_board(vans_leave_h: tuple[float, ...]) -> SiteSetup:
    """A 32 A board whose L1 three 1-phase vans crowd (none can finish; each leaves at ``vans_leave_h``), and a
    3-phase van that needs 10 kWh by the end of the run, at 3 h: depot-3ph-known in small."""
    vans = [VehicleSpec(f"v{i}", onboard_limit_a=16, phases=1, battery_kwh=60, soc_start=0.2, soc_target=1.0,
                        arrival_s=0, departure_s=leave * 3600, lag_s=2) for i, leave in enumerate(vans_leave_h)]
    three = VehicleSpec("t", onboard_limit_a=16, phases=3, battery_kwh=50, soc_start=0.3, soc_target=0.5,
                        arrival_s=600, departure_s=3 * 3600, lag_s=3)
    chargers = tuple(SiteCharger(v.name, ("b", "site"), (0, 1, 2), 16.0, visits=(v,)) for v in (*vans, three))
    return SiteSetup(name="crowded", chargers=chargers, node_limits_a={"site": (100.0,) * 3, "b": (32.0,) * 3},
                     duration_s=3 * 3600, needs_known=True)


@pytest.mark.parametrize(("vans_leave_h", "share_of_optimum"), [
    ((2.9, 2.95, 2.98), 0.98),  # the crowd stays as long as the 3-phase van: it must be served among them
    ((2.0, 2.1, 2.2), 0.96),  # the crowd leaves early: it takes only what it could not get after they have gone
])
def test_with_departures_known_a_three_phase_van_is_not_starved_by_vans_crowding_one_phase(
        vans_leave_h: tuple[float, ...], share_of_optimum: float) -> None:
    result = run_policy("powershare", crowded_board(vans_leave_h))
    cars = {c.name: c for c in result.cars}
    assert cars["t"].finished, cars["t"]  # by departure order alone it would wait for the vans to leave
    assert result.over_limit_amp_seconds == 0.0
    assert result.energy_kwh >= share_of_optimum * solve_optimum(crowded_board(vans_leave_h)).energy_kwh

