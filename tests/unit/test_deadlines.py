"""Departures and energy wanted: the pure ranking/targets module, the controller's use of it, the site file's
``schedules:`` and the runtime's ``NeedBook``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from drivers.model import ChargerReading, Iec61851State
from gateway.core.allocation import Request, allocate
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.deadlines import Need, Urgency, allocate_with_deadlines, urgency
from gateway.core.round import ControlRound, Outcome, run_now
from gateway.runtime.needs import NeedBook, SessionNeed, check_session_need, next_at
from gateway.site.config import ConfigError, ControlConfig, parse_site

CAP = {("site", 0): 60.0}


def req(cid: str, cap: float = 48.0, rank: tuple[float, ...] = ()) -> Request:
    return Request(cid, ("site",), (0,), cap, rank=rank)


def test_without_urgent_sessions_the_result_is_the_plain_allocation() -> None:
    requests = [req(f"c{i}") for i in range(6)]
    assert allocate_with_deadlines(requests, CAP, {}) == allocate(requests, CAP)


def test_the_earliest_departure_gets_the_rate_it_needs_before_anyone_shares() -> None:
    # Fair sharing gives 10 A each; the car leaving first needs 30 A and gets it, the rest share what is left.
    requests = [req(f"c{i}") for i in range(6)]
    urgent = {"c0": Urgency(required_a=30.0, departure_s=3600.0, laxity_s=100.0),
              "c1": Urgency(required_a=12.0, departure_s=7200.0, laxity_s=50.0)}
    grants = allocate_with_deadlines(requests, CAP, urgent)
    assert grants["c0"] >= 30.0 and grants["c1"] >= 12.0
    assert sum(grants.values()) <= 60.0 + 1e-9
    assert all(g == 0.0 or g >= 6.0 for g in grants.values())


def test_a_car_that_cannot_finish_asks_for_its_cap_and_a_car_that_can_only_for_its_rate() -> None:
    requests = [req("late", cap=32.0), req("fine"), req("other")]
    urgent = {"late": Urgency(required_a=80.0, departure_s=100.0, laxity_s=-50.0),
              "fine": Urgency(required_a=8.0, departure_s=200.0, laxity_s=500.0)}
    grants = allocate_with_deadlines(requests, CAP, urgent)
    assert grants["late"] == pytest.approx(32.0 + (60.0 - 32.0 - 8.0 - 6.0) / 3, abs=1e-6) or grants["late"] >= 32.0
    assert grants["fine"] >= 8.0 and grants["other"] >= 6.0


BOARD = {("b", p): 32.0 for p in range(3)} | {("site", p): 200.0 for p in range(3)}


def on_board(cid: str, phases: tuple[int, ...], cap: float = 16.0) -> Request:
    return Request(cid, ("b", "site"), phases, cap)


def crowd(stay_s: float) -> dict[str, Urgency]:
    """Three 1-phase vans that cannot finish, each asking for its 16 A, and a 3-phase van that needs 10 kWh and
    leaves last, after ``stay_s``."""
    urgent = {f"v{i}": Urgency(required_a=40.0, departure_s=1000.0 * (i + 1), laxity_s=-100.0,
                               stay_s=1000.0 * (i + 1), remaining_wh=50_000.0) for i in range(3)}
    urgent["t"] = Urgency(required_a=6.0, departure_s=stay_s, laxity_s=stay_s - 3300.0, stay_s=stay_s,
                          remaining_wh=10_000.0, watts_per_amp=690.0)
    return urgent


def test_a_car_on_phases_nobody_crowds_goes_first_with_what_it_cannot_get_once_the_crowd_has_left() -> None:
    # The vans crowd L1 of a 32 A board. An ampere of L1 gives the 3-phase van three times the energy it gives a
    # van (L2 and L3 are free). By departure alone it would come last and get nothing until they have gone.
    requests = [on_board(f"v{i}", (0,)) for i in range(3)] + [on_board("t", (0, 1, 2))]
    # The vans stay until 3000 s, the 3-phase van until 3600 s: 600 s alone at 16 A give it 1.8 kWh, far from 10.
    grants = allocate_with_deadlines(requests, BOARD, crowd(stay_s=3600.0))
    assert grants["t"] >= 6.0
    assert grants["v0"] == 16.0 and sum(grants[f"v{i}"] for i in range(3)) + grants["t"] <= 32.0 + 1e-9
    # It stays 4 h: alone for 3 h after the vans have gone, at 16 A (11 kW), it needs nothing from them now.
    grants = allocate_with_deadlines(requests, BOARD, crowd(stay_s=4 * 3600.0))
    assert grants["t"] == 0.0 and grants["v0"] == grants["v1"] == 16.0


def test_when_every_phase_of_a_car_is_crowded_it_waits_for_its_departure_like_the_others() -> None:
    # The same van when each of its phases has its own crowd: an ampere gives it no more than it gives anyone.
    requests = [on_board(f"v{p}", (p,), cap=30.0) for p in range(3)] + [on_board("t", (0, 1, 2))]
    urgent = {f"v{p}": Urgency(required_a=40.0, departure_s=1000.0, laxity_s=-100.0, stay_s=1000.0,
                               remaining_wh=50_000.0) for p in range(3)}
    urgent["t"] = crowd(stay_s=3600.0)["t"]
    grants = allocate_with_deadlines(requests, BOARD, urgent)
    assert grants["t"] == 0.0 and all(grants[f"v{p}"] == 30.0 for p in range(3))


def test_without_a_crowded_phase_departure_order_is_kept() -> None:
    # Room for all that is asked: the 3-phase van takes no precedence; everyone gets at least what it asked.
    requests = [on_board("v", (0,)), on_board("t", (0, 1, 2))]
    urgent = {"v": Urgency(required_a=10.0, departure_s=1000.0, laxity_s=100.0, stay_s=1000.0, remaining_wh=2000.0),
              "t": crowd(stay_s=3600.0)["t"]}
    grants = allocate_with_deadlines(requests, BOARD, urgent)
    assert grants["v"] >= 10.0 and grants["t"] >= 6.0


def test_deadlines_keep_every_capacity_and_the_minimum_rule_on_random_sites() -> None:
    rng = random.Random(15)
    for _ in range(300):
        n = rng.randint(1, 12)
        capacity = {("site", p): rng.uniform(0, 120) for p in range(3)} | {("b", p): rng.uniform(0, 60)
                                                                          for p in range(3)}
        requests = [Request(f"c{i}", ("b", "site") if i % 2 else ("site",),
                            (rng.randrange(3),) if i % 3 == 0 else (0, 1, 2), rng.choice((16.0, 32.0)),
                            rank=(0.0, float(i))) for i in range(n)]
        urgent = {r.charger_id: Urgency(rng.choice((None, rng.uniform(0, 60))), rng.uniform(0, 9000),
                                        rng.uniform(-3000, 3000)) for r in requests if rng.random() < 0.5}
        grants = allocate_with_deadlines(requests, capacity, urgent)
        load = dict.fromkeys(capacity, 0.0)
        for r in requests:
            g = grants[r.charger_id]
            assert g == 0.0 or r.min_a - 1e-9 <= g <= r.cap_a + 1e-9
            for key in r.constraints():
                load[key] += g
        assert all(load[k] <= capacity[k] + 1e-6 for k in capacity)


def test_urgency_is_none_without_a_departure_ahead_or_energy_left() -> None:
    assert urgency(Need(departure_s=None, energy_wh=1000.0), 0.0, 230.0, 1, 32.0, now=0.0) is None
    assert urgency(Need(departure_s=100.0, energy_wh=1000.0), 0.0, 230.0, 1, 32.0, now=100.0) is None
    assert urgency(Need(departure_s=9000.0, energy_wh=1000.0), 1000.0, 230.0, 1, 32.0, now=0.0) is None
    u = urgency(Need(departure_s=4500.0, energy_wh=23_000.0), 0.0, 230.0, 1, 32.0, now=0.0)
    assert u is not None and u.laxity_s < 0 and u.required_a is not None and u.required_a > 32.0


def specs() -> list[ChargerSpec]:
    return [ChargerSpec(id=f"u{i}", nodes=("site",), site_phases=(0,), max_current_a=48.0) for i in range(3)]


class Recorder:
    """A link on which every write succeeds at once."""

    def __init__(self, at: float) -> None:
        self.at = at

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        return [Outcome.DONE] * len(commands)

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        return Outcome.DONE

    def now(self) -> float:
        return self.at


def settle(controller: Controller, limits: Limits, seconds: int, energy: dict[str, float] | None = None) -> dict:
    """Cars that take whatever they are offered, stepped once a second."""
    setpoints: dict[str, float] = {}
    control = ControlRound(controller)
    for t in range(seconds):
        obs = {}
        for s in specs():
            amps = setpoints.get(s.id, 0.0)
            obs[s.id] = Observation(ChargerReading(
                state=Iec61851State.C if amps else Iec61851State.B, current_a=(amps, None, None),
                voltage_v=(230.0, None, None), setpoint_a=amps, session_energy_wh=(energy or {}).get(s.id, 0.0)))
        plan = run_now(control.run(float(t), obs, limits, Recorder(float(t))))
        for command in (*plan.decreases, *plan.increases):
            setpoints[command.charger_id] = command.current_a
    return setpoints


def test_controller_shares_equally_without_needs_and_serves_the_early_leaver_with_them() -> None:
    limits = Limits(node_limits_a={"site": (30.0, 30.0, 30.0)})
    plain = settle(Controller(specs(), ControlConfig()), limits, 30)
    assert plain == {"u0": 10.0, "u1": 10.0, "u2": 10.0}
    informed = Controller(specs(), ControlConfig())
    # u2 leaves in two hours and wants 4.6 kWh: 10 A would not do (it needs 10 A x 1.15 over 1 h 45 min).
    informed.set_needs({"u2": Need(departure_s=7200.0, energy_wh=4600.0)})
    got = settle(informed, limits, 30)
    assert got["u2"] >= 13.0 and sum(got.values()) <= 30.0
    assert got["u0"] >= 6.0 and got["u1"] >= 6.0


def test_what_rounding_down_leaves_goes_to_the_car_that_lost_most_of_a_step() -> None:
    # u2 is reserved 13.2 A; all rise by 1.6 A: 14.8, 7.6, 7.6 A, rounded down to 14, 7, 7: 2 A unused. u2 lost
    # the most to rounding and takes one; u0 and u1 were given the same share and would need 2 A together.
    controller = Controller(specs(), ControlConfig())
    controller.set_needs({"u2": Need(departure_s=7200.0, energy_wh=4600.0)})
    got = settle(controller, Limits(node_limits_a={"site": (30.0, 30.0, 30.0)}), 30)
    assert got == {"u0": 7.0, "u1": 7.0, "u2": 15.0}


def test_shortest_first_fills_the_least_energy_wanted_to_its_cap_then_the_next() -> None:
    limits = Limits(node_limits_a={"site": (60.0, 60.0, 60.0)})
    controller = Controller(specs(), ControlConfig(order="shortest_first"))
    controller.set_needs({"u0": Need(energy_wh=20_000.0), "u1": Need(energy_wh=2_000.0), "u2": Need(energy_wh=9_000.0)})
    got = settle(controller, limits, 30)
    assert (got["u1"], got["u2"], got.get("u0", 0.0)) == (48.0, 12.0, 0.0)


def test_shortest_first_does_not_switch_a_charging_car_off_for_full_cars_being_probed() -> None:
    # u0 and u1 are full and stay plugged in (they draw nothing, so each is learned to take about nothing); u2
    # arrives at 600 s and takes 16 A of the 48. Both full cars are then probed with the room u2 leaves. First
    # in line by plug-in time, they were handed all 48 A and u2 was switched off for cars that take nothing.
    specs3 = [ChargerSpec(id=f"u{i}", nodes=("site",), site_phases=(0, 1, 2), max_current_a=32.0) for i in range(3)]
    control = ControlRound(Controller(specs3, ControlConfig(order="shortest_first")))
    limits = Limits(node_limits_a={"site": (48.0, 48.0, 48.0)})
    setpoints: dict[str, float] = {}
    u2: list[float] = []
    for t in range(3000):
        obs = {}
        for s in specs3:
            amps = min(setpoints.get(s.id, 0.0), 16.0) if s.id == "u2" else 0.0
            state = Iec61851State.A if s.id == "u2" and t < 600 else Iec61851State.C if amps else Iec61851State.B
            obs[s.id] = Observation(ChargerReading(state=state, current_a=(amps, amps, amps), voltage_v=(230.0,) * 3,
                                                   setpoint_a=setpoints.get(s.id, 0.0)))
        plan = run_now(control.run(float(t), obs, limits, Recorder(float(t))))
        for command in (*plan.decreases, *plan.increases):
            setpoints[command.charger_id] = command.current_a
        u2.append(setpoints.get("u2", 0.0))
    on = u2.index(next(a for a in u2 if a >= 6.0))
    assert min(u2[on:]) >= 16.0, f"u2 switched off at {on + u2[on:].index(min(u2[on:]))} s"


def test_control_order_is_validated() -> None:
    with pytest.raises(ValueError):
        ControlConfig(order="fastest")  # type: ignore[arg-type]


SITE = {"installation_limit_a": 100, "network_limit_a": 60,
        "chargers": [{"id": f"cp{i}", "profile": "sim-32",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": 5000 + i}} for i in (1, 2)]}


def parse(**extra: object) -> object:
    return parse_site(SITE | extra, "site.yaml", lambda _: 32.0)[0]


def test_schedules_parse_and_cover_every_charger_when_none_are_named() -> None:
    cfg = parse(schedules=[{"departure": "06:00", "energy_kwh": 40}])
    book = NeedBook(cfg.schedules, ["cp1", "cp2"])  # type: ignore[attr-defined]
    plugged = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
    book.observe({"cp1": True, "cp2": False}, plugged)
    needs = book.needs(1000.0, plugged)
    assert set(needs) == {"cp1"}
    assert needs["cp1"].departure_s == pytest.approx(1000.0 + 11.5 * 3600)
    assert needs["cp1"].energy_wh == 40_000.0


@pytest.mark.parametrize(("schedules", "path"), [
    ([{"departure": "6:00"}], "schedules[0].departure"),
    ([{"departure": "24:00"}], "schedules[0].departure"),
    ([{"chargers": ["cp1"]}], "schedules[0]"),
    ([{"departure": "06:00", "leave": "07:00"}], "schedules[0].leave"),
    ([{"chargers": ["cp9"], "departure": "06:00"}], "schedules[0].chargers"),
    ([{"departure": "06:00"}, {"chargers": ["cp2"], "energy_kwh": 20}], "schedules[1].chargers"),
    ([{"energy_kwh": 0}], "schedules[0].energy_kwh"),
])
def test_bad_schedules_are_refused_with_their_path(schedules: list[dict[str, object]], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(schedules=schedules)
    assert any(issue.path == path for issue in err.value.issues), err.value


def test_a_session_value_wins_over_the_schedule_and_ends_at_unplug() -> None:
    cfg = parse(schedules=[{"chargers": ["cp1"], "departure": "06:00"}])
    book = NeedBook(cfg.schedules, ["cp1", "cp2"])  # type: ignore[attr-defined]
    now = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    book.observe({"cp1": True}, now)
    book.set_session("cp1", SessionNeed(departure=now + timedelta(hours=2), energy_kwh=10.0))
    assert book.needs(0.0, now)["cp1"] == Need(departure_s=7200.0, energy_wh=10_000.0)
    book.observe({"cp1": False}, now)
    book.observe({"cp1": True}, now)
    assert book.needs(0.0, now)["cp1"].energy_wh is None  # the schedule again, without the session's energy


def test_next_at_is_strictly_after_and_keeps_the_time_zone() -> None:
    tz = timezone(timedelta(hours=1))
    assert next_at("06:00", datetime(2026, 12, 4, 5, 0, tzinfo=tz)) == datetime(2026, 12, 4, 6, 0, tzinfo=tz)
    assert next_at("06:00", datetime(2026, 12, 4, 6, 0, tzinfo=tz)) == datetime(2026, 12, 5, 6, 0, tzinfo=tz)


@pytest.mark.parametrize("need", [
    SessionNeed(departure=datetime(2026, 12, 4, 10, 0)),  # no time zone
    SessionNeed(departure=datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),  # past
    SessionNeed(departure=datetime(2026, 12, 20, 9, 0, tzinfo=UTC)),  # too far
    SessionNeed(energy_kwh=float("nan")),
    SessionNeed(energy_kwh=-1.0),
])
def test_bad_session_needs_are_explained(need: SessionNeed) -> None:
    assert check_session_need(need, datetime(2026, 12, 4, 9, 30, tzinfo=UTC)) is not None
