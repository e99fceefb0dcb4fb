"""Property-based tests of the controller over random sites, vehicles, faults and limit changes.

Each example is a scenario run second by second with real vehicle physics (lag up to the 5 s IEC 61851 allows);
``scenario_site`` checks the physical currents on every node and phase at every tick and every command's range.
"""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scenario_site import run

ROTATIONS = ["L1L2L3", "L2L3L1", "L3L1L2", "L1", "L2", "L3"]


@st.composite
def sites(draw: st.DrawFn, max_chargers: int = 7) -> dict[str, Any]:
    n_circuits = draw(st.integers(0, 2))
    circuits = {f"c{i}": {"parent": "site", "limit_a": draw(st.integers(0, 60))} for i in range(n_circuits)}
    if n_circuits == 2 and draw(st.booleans()):
        circuits["c1"]["parent"] = "c0"
    chargers = {}
    for i in range(draw(st.integers(1, max_chargers))):
        chargers[f"cp{i}"] = {
            "max_a": draw(st.integers(6, 48)),
            "phases": draw(st.sampled_from(ROTATIONS)),
            "circuit": draw(st.sampled_from(["site", *circuits])),
            "failsafe": draw(st.booleans()),
            "comm_timeout_s": draw(st.integers(3, 40)),
            "priority": draw(st.integers(0, 1)),
        }
    limit = draw(st.one_of(st.integers(0, 120), st.lists(st.integers(0, 120), min_size=3, max_size=3)))
    return {"limit_a": limit, "circuits": circuits, "chargers": chargers, "enabled": draw(st.booleans()),
            "settings": {"min_dwell_s": draw(st.sampled_from([0, 30])), "rotation_period_s": 60,
                         "demand_window_s": 20, "probe_interval_s": 30}}


cars = st.fixed_dictionaries({
    "limit_a": st.integers(6, 48), "phases": st.integers(1, 3), "lag_s": st.integers(0, 5),
    "soc": st.floats(0.1, 0.95), "battery_kwh": st.sampled_from([2.0, 40.0]),
})


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    site = draw(sites())
    ids = list(site["chargers"])
    end = 240
    events: list[dict[str, Any]] = []
    for cid in ids:
        t = draw(st.integers(0, 60))
        while t < end:
            events.append({"at": t, "plug": cid, "car": draw(cars)})
            t += draw(st.integers(5, 150))
            if t >= end:
                break
            events.append({"at": t, "unplug": cid})
            t += draw(st.integers(2, 60))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["limit", "fault", "enable", "unit"]))
        at = draw(st.integers(1, end - 1))
        if kind == "limit":
            node = draw(st.sampled_from(["site", *site["circuits"]]))
            events.append({"at": at, "node": node, "limit_a": draw(st.integers(0, 120))})
        elif kind == "fault":
            cid = draw(st.sampled_from(ids))
            events.append({"at": at, "offline": cid})
            events.append({"at": min(end, at + draw(st.integers(1, 90))), "online": cid})
        elif kind == "enable":
            events.append({"at": at, "enable": draw(st.booleans())})
        else:
            events.append({"at": at, "charger": draw(st.sampled_from(ids)), "unit_limit_a": draw(st.integers(0, 48))})
    return {"site": site, "events": events, "run_until": end}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_limit_is_ever_exceeded_and_every_command_is_valid(scenario: dict[str, Any]) -> None:
    result = run(scenario)
    assert not result.violations, "\n".join(f"t={v.at:g}: {v.what}" for v in result.violations[:10]) + "\n" + \
        "\n".join(result.timeline[-5:])


@st.composite
def scarce_sites(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 6))
    limit = draw(st.integers(6, 6 * n - 1))
    return {
        "site": {"limit_a": limit, "settings": {"min_dwell_s": 30, "rotation_period_s": 60},
                 "chargers": {f"cp{i}": {"max_a": 32} for i in range(n)}},
        "events": [{"at": draw(st.integers(0, 20)), "plug": f"cp{i}", "car": {"battery_kwh": 200, "soc": 0.1}}
                   for i in range(n)],
        "run_until": 20 + n * 90 + 60,
    }


@settings(max_examples=40, deadline=None)
@given(scarce_sites())
def test_every_waiting_car_is_eventually_served_under_scarcity(scenario: dict[str, Any]) -> None:
    result = run(scenario)
    assert not result.violations
    never = set(scenario["site"]["chargers"]) - result.served
    assert not never, f"never served: {sorted(never)}"
