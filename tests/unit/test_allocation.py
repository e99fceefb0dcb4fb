"""Dividing current: worked cases that read like the rules, then properties over random circuit trees.

The fast allocator is checked against ``reference_allocation`` (the first, literal implementation of the contract)
and, independently of both, against what the contract promises: no capacity exceeded, 0 or between minimum and
cap, max-min fair above the minimum, and greedy admission in rank order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.reference_allocation import reference_allocate

from gateway.core.allocation import NodePhase, Request, allocate
from gateway.sim.allocation_bench import build_instance, measure

EPS = 1e-9
"""The contract's admission tolerance."""
TOL = 1e-6
"""How close two allocations, a constraint and its limit, or a grant and its cap must be to count as equal."""


def single_phase(charger_id: str, *nodes: str, cap: float = 32.0, phase: int = 0, **kw: object) -> Request:
    return Request(charger_id, (*nodes, "site"), (phase,), cap, **kw)  # type: ignore[arg-type]


# --- worked cases -----------------------------------------------------------------------------------------------


def test_equal_share_when_only_the_site_binds() -> None:
    requests = [single_phase(c) for c in "abc"]
    assert allocate(requests, {("site", 0): 45.0}) == pytest.approx({"a": 15.0, "b": 15.0, "c": 15.0})


def test_a_capped_request_frees_current_for_the_others() -> None:
    requests = [single_phase("a", cap=8.0), single_phase("b"), single_phase("c")]
    assert allocate(requests, {("site", 0): 45.0}) == pytest.approx({"a": 8.0, "b": 18.5, "c": 18.5})


def test_a_sub_circuit_binds_before_the_site_and_the_rest_goes_elsewhere() -> None:
    requests = [single_phase("a", "board"), single_phase("b", "board"), single_phase("c")]
    capacity = {("board", 0): 20.0, ("site", 0): 60.0}
    assert allocate(requests, capacity) == pytest.approx({"a": 10.0, "b": 10.0, "c": 32.0})


def test_single_phase_requests_on_different_phases_do_not_compete() -> None:
    requests = [single_phase("l1", phase=0), single_phase("l2", phase=1), single_phase("l3", phase=2),
                single_phase("l1b", phase=0)]
    capacity = {("site", p): 16.0 for p in range(3)}
    assert allocate(requests, capacity) == pytest.approx({"l1": 8.0, "l2": 16.0, "l3": 16.0, "l1b": 8.0})


def test_a_three_phase_charger_is_held_by_its_busiest_phase() -> None:
    requests = [Request("3ph", ("site",), (0, 1, 2), 32.0), single_phase("l2", phase=1)]
    capacity = {("site", 0): 32.0, ("site", 1): 20.0, ("site", 2): 32.0}
    assert allocate(requests, capacity) == pytest.approx({"3ph": 10.0, "l2": 10.0})


def test_weights_share_the_current_above_the_minimum() -> None:
    requests = [single_phase("light", weight=1.0), single_phase("heavy", weight=2.0)]
    # 30 A: both get 6 A, the remaining 18 A split 1:2.
    assert allocate(requests, {("site", 0): 30.0}) == pytest.approx({"light": 12.0, "heavy": 18.0})


def test_rank_decides_who_is_admitted_under_scarcity() -> None:
    requests = [single_phase("late", rank=(2,)), single_phase("first", rank=(0,)), single_phase("second", rank=(1,))]
    assert allocate(requests, {("site", 0): 14.0}) == pytest.approx({"late": 0.0, "first": 7.0, "second": 7.0})


def test_a_lower_rank_that_does_not_fit_does_not_block_a_later_one_that_does() -> None:
    requests = [single_phase("big", "full", rank=(0,), min_a=10.0), single_phase("small", rank=(1,))]
    capacity = {("full", 0): 8.0, ("site", 0): 100.0}
    assert allocate(requests, capacity) == pytest.approx({"big": 0.0, "small": 32.0})


def test_a_cap_below_the_minimum_is_never_admitted() -> None:
    requests = [single_phase("weak", cap=5.0), single_phase("zero", cap=0.0), single_phase("ok", cap=6.0)]
    assert allocate(requests, {("site", 0): 100.0}) == {"weak": 0.0, "zero": 0.0, "ok": 6.0}


def test_ties_in_rank_keep_input_order() -> None:
    a, b = single_phase("a"), single_phase("b")
    assert allocate([a, b], {("site", 0): 10.0}) == pytest.approx({"a": 10.0, "b": 0.0})
    assert allocate([b, a], {("site", 0): 10.0}) == pytest.approx({"b": 10.0, "a": 0.0})


def test_float_noise_in_a_limit_does_not_turn_a_charger_away() -> None:
    noisy = 32.3 - 14.3  # a 32.3 A limit less 14.3 A of other load: 17.999999999999996
    assert noisy < 18.0
    grant = allocate([single_phase(c) for c in "abc"], {("site", 0): noisy})
    assert all(v == 6.0 for v in grant.values())


def test_a_negative_capacity_is_no_room_and_missing_ones_are_errors() -> None:
    assert allocate([single_phase("a")], {("site", 0): -3.0}) == {"a": 0.0}
    with pytest.raises(KeyError):
        allocate([single_phase("a", "board")], {("site", 0): 32.0})
    with pytest.raises(KeyError):  # even a request that could never be admitted names a known node
        allocate([single_phase("a"), single_phase("b", "nowhere", cap=0.0)], {("site", 0): 32.0})


@pytest.mark.parametrize("bad", [
    dict(weight=0.0), dict(weight=-1.0), dict(weight=math.nan), dict(weight=1e-10), dict(weight=1e10), dict(min_a=-1.0),
    dict(min_a=math.inf), dict(cap_a=math.nan), dict(cap_a=math.inf),
])
def test_requests_that_make_no_sense_are_refused_with_their_id(bad: dict[str, float]) -> None:
    fields: dict[str, object] = dict(charger_id="odd", nodes=("site",), phases=(0,), cap_a=16.0) | bad
    with pytest.raises(ValueError, match="odd"):
        allocate([single_phase("fine"), Request(**fields)], {("site", 0): 32.0})  # type: ignore[arg-type]


def test_repeated_ids_nodes_or_phases_are_refused() -> None:
    with pytest.raises(ValueError, match="more than one"):
        allocate([single_phase("a"), single_phase("a")], {("site", 0): 32.0})
    with pytest.raises(ValueError, match="twice"):
        allocate([Request("a", ("site",), (0, 0), 16.0)], {("site", 0): 32.0})
    with pytest.raises(ValueError, match="twice"):
        allocate([Request("a", ("site", "site"), (0,), 16.0)], {("site", 0): 32.0})


def test_nothing_to_divide() -> None:
    assert allocate([], {}) == {}


def test_the_worked_example_in_the_docs() -> None:
    """docs/allocation.md walks through this instance; keep the two in step."""
    requests = [
        Request("A", ("board", "site"), (0, 1, 2), cap_a=32.0),
        Request("B", ("board", "site"), (0,), cap_a=32.0, weight=2.0),
        Request("G", ("board", "site"), (0,), cap_a=32.0),
        Request("C", ("site",), (1,), cap_a=10.0),
        Request("D", ("site",), (2,), cap_a=32.0, rank=(1,)),
        Request("E", ("site",), (2,), cap_a=32.0, rank=(2,)),
    ]
    capacity = {("board", 0): 24.0, ("board", 1): 24.0, ("board", 2): 24.0,
                ("site", 0): 40.0, ("site", 1): 40.0, ("site", 2): 16.0}
    grant = allocate(requests, capacity)
    assert grant == pytest.approx({"A": 7.5, "B": 9.0, "G": 7.5, "C": 10.0, "D": 8.5, "E": 0.0})
    assert grant == pytest.approx(reference_allocate(requests, capacity))


@pytest.mark.parametrize("n", [100, 300])
def test_the_benchmark_instance_matches_the_reference(n: int) -> None:
    requests, capacity = build_instance(n, seed=n)
    fast, slow = allocate(requests, capacity), reference_allocate(requests, capacity)
    assert fast.keys() == slow.keys()
    assert max(abs(fast[c] - slow[c]) for c in slow) <= TOL
    assert 0 < sum(1 for v in fast.values() if v == 0.0) < n // 2, "the instance should turn some cars away"


def test_measure_reports_median_and_p99() -> None:
    figures = measure(50, repeats=5)
    assert figures["chargers"] == 50 and figures["runs"] == 5
    assert 0 < figures["median_ms"] <= figures["p99_ms"]


# --- properties ---------------------------------------------------------------------------------------------------

PHASE_SETS = [(0,), (1,), (2,), (0, 1), (1, 2), (2, 0), (0, 1, 2), (1, 2, 0), (2, 0, 1)]


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Request], dict[NodePhase, float]]:
    """A site with up to 3 feeders of up to 3 boards; chargers hang off any node; limits often tight."""
    parent: dict[str, str | None] = {"site": None}
    for f in range(draw(st.integers(0, 3))):
        parent[f"f{f}"] = "site"
        for b in range(draw(st.integers(0, 3))):
            parent[f"f{f}b{b}"] = f"f{f}"
    nodes = sorted(parent)
    requests = []
    for i in range(draw(st.integers(0, 24))):
        node: str | None = draw(st.sampled_from(nodes))
        path = []
        while node is not None:
            path.append(node)
            node = parent[node]
        requests.append(Request(
            charger_id=f"c{i}",
            nodes=tuple(path),
            phases=draw(st.sampled_from(PHASE_SETS)),
            cap_a=draw(st.one_of(st.sampled_from([0.0, 4.0, 6.0, 10.0, 16.0, 32.0]), st.floats(0, 48))),
            min_a=draw(st.sampled_from([6.0, 6.0, 6.0, 8.0, 0.0])),
            weight=draw(st.one_of(st.just(1.0), st.sampled_from([0.5, 2.0, 3.0]), st.floats(0.25, 4))),
            rank=draw(st.sampled_from([(), (0,), (1,), (1, 0.5), (2,)])),
        ))
    exact = st.sampled_from([0.0, 6.0, 12.0, 16.0, 18.0, 20.0, 32.0, 63.0])
    capacity = {(node, phase): draw(st.one_of(exact, st.floats(-10, 150))) for node in nodes for phase in range(3)}
    return requests, capacity


def users(requests: Sequence[Request], capacity: Mapping[NodePhase, float]) -> dict[NodePhase, list[Request]]:
    on: dict[NodePhase, list[Request]] = {key: [] for key in capacity}
    for r in requests:
        for key in r.constraints():
            on[key].append(r)
    return on


def share(grant: Mapping[str, float], r: Request) -> float:
    return (grant[r.charger_id] - r.min_a) / r.weight


def admissible(r: Request) -> bool:
    return r.cap_a + EPS >= r.min_a and r.cap_a > 0


def admitted(r: Request, grant: Mapping[str, float]) -> bool:
    """Granted current, or admitted at a minimum of 0 A (which looks the same from outside)."""
    return grant[r.charger_id] > 0.0 or (r.min_a == 0.0 and admissible(r))


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances())
def test_no_capacity_is_ever_exceeded(instance: tuple[list[Request], dict[NodePhase, float]]) -> None:
    requests, capacity = instance
    grant = allocate(requests, capacity)
    for key, on in users(requests, capacity).items():
        limit = max(capacity[key], 0.0)
        total = sum(grant[r.charger_id] for r in on)
        assert total <= limit + EPS
        if total > limit:
            # Only the admission tolerance may overshoot, and then nobody on it is above their minimum.
            assert all(grant[r.charger_id] in (0.0, r.min_a) for r in on), (key, limit, total)


@SETTINGS
@given(instances())
def test_every_grant_is_zero_or_between_minimum_and_cap(
        instance: tuple[list[Request], dict[NodePhase, float]]) -> None:
    requests, capacity = instance
    grant = allocate(requests, capacity)
    assert list(grant) == [r.charger_id for r in requests]
    for r in requests:
        g = grant[r.charger_id]
        # A cap within the admission tolerance below the minimum counts as the minimum.
        assert g == 0.0 or r.min_a <= g <= max(r.cap_a, r.min_a), (r, g)


@SETTINGS
@given(instances())
def test_same_result_as_the_reference(instance: tuple[list[Request], dict[NodePhase, float]]) -> None:
    requests, capacity = instance
    fast, slow = allocate(requests, capacity), reference_allocate(requests, capacity)
    assert fast.keys() == slow.keys()
    for charger_id in slow:
        assert fast[charger_id] == pytest.approx(slow[charger_id], abs=TOL), charger_id


@SETTINGS
@given(instances())
def test_max_min_fair_above_the_minimum(instance: tuple[list[Request], dict[NodePhase, float]]) -> None:
    """Each admitted request below its cap has a bottleneck: a full constraint on which nobody has a larger share.

    So it could only be raised by lowering someone whose share (above the minimum, per unit of weight) is no
    larger than its own.
    """
    requests, capacity = instance
    grant = allocate(requests, capacity)
    on = users([r for r in requests if admitted(r, grant)], capacity)
    full = {key for key, rs in on.items() if sum(grant[r.charger_id] for r in rs) >= max(capacity[key], 0.0) - TOL}
    for r in requests:
        if not admitted(r, grant) or grant[r.charger_id] >= max(r.cap_a, r.min_a) - TOL:
            continue
        assert any(
            key in full and all(share(grant, r) >= share(grant, o) - TOL / o.weight for o in on[key])
            for key in r.constraints()
        ), f"{r.charger_id} could be raised: {grant}"


@SETTINGS
@given(instances())
def test_admission_is_greedy_in_rank_order(instance: tuple[list[Request], dict[NodePhase, float]]) -> None:
    """Walking the requests in rank order: each admitted one fitted beside those before it, each refused did not."""
    requests, capacity = instance
    grant = allocate(requests, capacity)
    order = sorted(range(len(requests)), key=lambda i: (requests[i].rank, i))
    booked: dict[NodePhase, list[float]] = {key: [] for key in capacity}
    for i in order:
        r = requests[i]
        room = {key: max(capacity[key], 0.0) - math.fsum(booked[key]) for key in r.constraints()}
        if admitted(r, grant):
            assert admissible(r)
            assert all(left + EPS + TOL >= r.min_a for left in room.values()), (r, room)
            for key in r.constraints():
                booked[key].append(r.min_a)
        elif admissible(r):
            assert any(left + EPS - TOL < r.min_a for left in room.values()), (r, room)


@SETTINGS
@given(instances(), st.lists(st.floats(-9, 9), min_size=24, max_size=24))
def test_wildly_different_weights_still_fit(instance: tuple[list[Request], dict[NodePhase, float]],
                                            exponents: list[float]) -> None:
    """Weights eighteen orders of magnitude apart lose the small ones to rounding in running sums: still safe."""
    requests, capacity = instance
    requests = [dataclasses.replace(r, weight=10**e) for r, e in zip(requests, exponents, strict=False)]
    grant = allocate(requests, capacity)
    for key, on in users(requests, capacity).items():
        total = sum(grant[r.charger_id] for r in on)
        assert total <= max(capacity[key], 0.0) + EPS
        assert total <= max(capacity[key], 0.0) or all(grant[r.charger_id] in (0.0, r.min_a) for r in on)
    for r in requests:
        assert grant[r.charger_id] == 0.0 or r.min_a <= grant[r.charger_id] <= max(r.cap_a, r.min_a)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), weight=st.sampled_from([1.0, 1 / 3, 0.7, 3.0]),
       limit=st.floats(6.0, 500.0), nodes=st.integers(1, 3))
def test_exact_sums_stay_within_the_limit(n: int, weight: float, limit: float, nodes: int) -> None:
    """Many equal chargers filling one awkward limit: the plain float sum, in any order, never crosses it."""
    path = (*(f"n{d}" for d in range(nodes - 1)), "site")
    requests = [Request(f"c{i}", path, (0,), cap_a=48.0, weight=weight) for i in range(n)]
    capacity = {(node, 0): limit for node in path}
    grant = allocate(requests, capacity)
    values = list(grant.values())
    for ordering in (values, sorted(values), sorted(values, reverse=True)):
        assert sum(ordering) <= limit
