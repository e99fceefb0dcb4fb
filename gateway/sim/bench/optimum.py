"""An offline upper bound on what any policy could deliver on a scenario: one linear program over the whole run.

It knows the future (every arrival, departure and limit change) and ignores what makes real sharing hard, so no
policy can beat its energy; a policy's ratio to it says how much is left on the table. Relaxations, each of which
only makes the bound looser:

* time is cut into steps (60 s by default, also cut wherever a car arrives or leaves or a limit changes, so a car
  is present for all of a step or none of it and a limit is constant in it); a car's current is constant within a
  step, and a lowered limit counts after ``LIMIT_DROP_GRACE_S``, exactly as the virtual site accounts for it.
  There is no lag and no 6 A minimum, so current can be split in any way (any real schedule's step averages are a
  solution, so nothing real beats it);
* the taper: a car accepts ``min(onboard, max(onboard·(1−soc)/0.2, 6 A))`` above 80 % (``drivers.sim.vehicle``).
  That is convex in the state of charge, so the chord from (80 %, onboard) to (100 %, 6 A) lies above it and is
  linear: ``I ≤ onboard + (onboard − 6)·(0.8 − soc)/0.2``, which is looser than the onboard limit below 80 % and
  so needs no case split. It is imposed with the state of charge at the start of each step, the highest in it.

Two solves with HiGHS: the most energy, then, holding that energy, the earliest delivery: the least sum over cars
of the mean time (since arrival) at which the car's energy arrives. Each car counts once whatever its size, which
favours finishing small cars first, as shortest-job-first does for mean completion time. That is what keeps the
optimum's completion times low; they are a good schedule's, not a proven minimum. scipy is only needed here
(``pip install '.[bench]'``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from drivers.sim.vehicle import MIN_CURRENT_A, TAPER_START_SOC, VehicleSpec
from gateway.core.limits import SITE_NODE
from gateway.errors import StartError
from gateway.sim.virtual_site import LIMIT_DROP_GRACE_S, CarResult, PhaseLimits, RunResult, SiteSetup

INSTALL_HINT = "the optimum needs scipy: pip install '.[bench]'"
FINISHED_TOLERANCE_WH = 0.5
FIRST_DRAW_A = 0.01
"""Below this a step's current is solver noise, not a car drawing."""


class SolverMissing(StartError):
    """scipy (HiGHS) is not installed."""


@dataclass(frozen=True, slots=True)
class _Visit:
    spec: VehicleSpec
    charger_id: str
    keys: tuple[tuple[str, int], ...]
    cap_a: float
    steps: range
    """The steps the car is present for (it is present for the whole of each)."""
    end_s: float
    wh_per_amp_s: float
    need_wh: float


def solve_optimum(setup: SiteSetup, step_s: float = 60.0) -> RunResult:
    """The bound as a ``RunResult`` (no trace; ``over_limit`` is zero by construction)."""
    try:
        import numpy as np
        from scipy.optimize import linprog
        from scipy.sparse import coo_array, vstack
    except ImportError as exc:
        raise SolverMissing(INSTALL_HINT) from exc

    edges = _step_edges(setup, step_s)
    lengths = [b - a for a, b in itertools.pairwise(edges)]
    visits = _visits(setup, edges)
    # Variables: per visit, I (amps per phase) for each step it is present, then S (Wh delivered before the
    # step) for each of those steps but the first (where it is 0).
    i_index: list[int] = []
    s_index: list[int] = []
    n = 0
    for v in visits:
        i_index.append(n)
        n += len(v.steps)
        s_index.append(n)
        n += len(v.steps) - 1
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []
    eq_rows: list[int] = []
    eq_cols: list[int] = []
    eq_vals: list[float] = []
    n_eq = 0
    upper = np.full(n, np.inf)

    def add_row(entries: list[tuple[int, float]], bound: float) -> None:
        row = len(rhs)
        for col, val in entries:
            rows.append(row)
            cols.append(col)
            vals.append(val)
        rhs.append(bound)

    node_rows: dict[tuple[str, int, int], list[tuple[int, float]]] = {}
    energy_cost = np.zeros(n)
    time_cost = np.zeros(n)
    for v, i0, s0 in zip(visits, i_index, s_index, strict=True):
        onboard = v.spec.onboard_limit_a
        slope = (onboard - MIN_CURRENT_A) / (1.0 - TAPER_START_SOC)
        battery_wh = v.spec.battery_kwh * 1000.0
        need_row: list[tuple[int, float]] = []
        for j, step in enumerate(v.steps):
            col = i0 + j
            wh_per_amp = v.wh_per_amp_s * lengths[step]
            upper[col] = v.cap_a
            energy_cost[col] = wh_per_amp
            # Mean time since arrival at which this energy arrives, per Wh the car needs.
            mid = (edges[step] + edges[step + 1]) / 2
            time_cost[col] = wh_per_amp * (mid - v.spec.arrival_s) / max(v.need_wh, 1.0)
            need_row.append((col, wh_per_amp))
            for node, phase in v.keys:
                node_rows.setdefault((node, phase, step), []).append((col, 1.0))
            # Taper chord at the state of charge at the start of the step: I + slope·S/B <= onboard + slope·(0.8 − soc0)
            taper = [(col, 1.0)]
            if j > 0:
                taper.append((s0 + j - 1, slope / battery_wh))
            add_row(taper, onboard + slope * (TAPER_START_SOC - v.spec.soc_start))
            if j + 1 < len(v.steps):  # S[j+1] − S[j] − wh·I[j] = 0
                eq_rows.extend([n_eq, n_eq])
                eq_cols.extend([s0 + j, col])
                eq_vals.extend([1.0, -wh_per_amp])
                if j > 0:
                    eq_rows.append(n_eq)
                    eq_cols.append(s0 + j - 1)
                    eq_vals.append(-1.0)
                n_eq += 1
        add_row(need_row, v.need_wh)
    limits = {step: accounting_limits_at(setup, edges[step]) for step in {key[2] for key in node_rows}}
    for (node, phase, step), entries in node_rows.items():
        add_row(entries, limits[step][node][phase])

    a_ub = coo_array((vals, (rows, cols)), shape=(len(rhs), n)).tocsr()
    a_eq = coo_array((eq_vals, (eq_rows, eq_cols)), shape=(n_eq, n)).tocsr() if n_eq else None
    b_eq = np.zeros(n_eq) if n_eq else None
    bounds = np.column_stack([np.zeros(n), upper])
    first = linprog(-energy_cost, A_ub=a_ub, b_ub=np.array(rhs), A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                    method="highs")
    if first.status != 0:
        raise RuntimeError(f"optimum LP for {setup.name}: {first.message}")
    best_wh = float(energy_cost @ first.x)
    # Hold that energy (to a milliwatt-hour) and deliver it as early as possible.
    held = coo_array(energy_cost.reshape(1, -1)).tocsr()
    second = linprog(time_cost, A_ub=vstack([a_ub, -held]).tocsr(), b_ub=np.append(rhs, -(best_wh - 1e-3)),
                     A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    x = second.x if second.status == 0 else first.x
    return _result(setup, edges, visits, i_index, [float(value) for value in x])


def _step_edges(setup: SiteSetup, step_s: float) -> list[float]:
    """Every ``step_s``, plus every instant something changes (arrival, departure, limit in force), so that within
    a step each car is present throughout or not at all and each limit is constant."""
    instants = {0.0, setup.duration_s}
    instants.update(k * step_s for k in range(math.ceil(setup.duration_s / step_s)))
    for ch in setup.chargers:
        for car in ch.visits:
            instants.add(car.arrival_s)
            if car.departure_s is not None:
                instants.add(car.departure_s)
    for change in setup.limit_changes:
        instants.update((change.at_s, change.at_s + LIMIT_DROP_GRACE_S))
    return sorted(t for t in instants if 0.0 <= t <= setup.duration_s)


def _visits(setup: SiteSetup, edges: list[float]) -> list[_Visit]:
    index = {t: i for i, t in enumerate(edges)}
    visits = []
    for ch in setup.chargers:
        for original in ch.visits:
            if original.arrival_s >= setup.duration_s:
                continue
            phases = min(original.phases, len(ch.site_phases))
            spec = replace(original, phases=phases, voltage_v=setup.voltage_v)
            end = setup.duration_s if spec.departure_s is None else min(spec.departure_s, setup.duration_s)
            visits.append(_Visit(
                spec=spec, charger_id=ch.id,
                keys=tuple((node, ch.site_phases[j]) for node in ch.nodes for j in range(phases)),
                cap_a=min(spec.onboard_limit_a, ch.max_current_a), steps=range(index[spec.arrival_s], index[end]),
                end_s=end, wh_per_amp_s=spec.voltage_v * phases / 3600.0,
                need_wh=(spec.soc_target - spec.soc_start) * spec.battery_kwh * 1000.0))
    return visits


def accounting_limits_at(setup: SiteSetup, t: float) -> dict[str, PhaseLimits]:
    """The limit the site is held to at ``t``: the highest in force at any time in the last ``LIMIT_DROP_GRACE_S``
    (a lowered limit counts only after the grace; a raised one at once), as the virtual site accounts for it."""
    instants = [t] + [c.at_s - 1e-9 for c in setup.limit_changes if t - LIMIT_DROP_GRACE_S < c.at_s <= t]
    result: dict[str, PhaseLimits] = {}
    for node in setup.node_limits_a:
        values = [_limits_at(setup, s)[node] for s in instants]
        result[node] = (max(v[0] for v in values), max(v[1] for v in values), max(v[2] for v in values))
    return result


def _limits_at(setup: SiteSetup, t: float) -> dict[str, PhaseLimits]:
    limits = dict(setup.node_limits_a)
    for change in sorted(setup.limit_changes, key=lambda c: c.at_s):
        if change.at_s <= t:
            limits[change.node] = change.limits_a
    return limits


def _result(setup: SiteSetup, edges: list[float], visits: list[_Visit], i_index: list[int],
            x: list[float]) -> RunResult:
    cars = []
    site_load = [[0.0, 0.0, 0.0] for _ in range(len(edges) - 1)]
    for v, i0 in zip(visits, i_index, strict=True):
        delivered = 0.0
        completion: float | None = 0.0 if v.need_wh <= 0 else None
        first_draw: float | None = v.spec.arrival_s if v.need_wh <= 0 else None
        for j, step in enumerate(v.steps):
            amps = max(0.0, x[i0 + j])
            if first_draw is None and amps > FIRST_DRAW_A:
                first_draw = edges[step]
            for node, phase in v.keys:
                if node == SITE_NODE:
                    site_load[step][phase] += amps
            length = edges[step + 1] - edges[step]
            energy = amps * v.wh_per_amp_s * length
            if completion is None and energy > 0 and delivered + energy >= v.need_wh - FINISHED_TOLERANCE_WH:
                within = max(0.0, min(1.0, (v.need_wh - delivered) / energy)) * length
                completion = edges[step] + within - v.spec.arrival_s
            delivered += energy
        cars.append(CarResult(
            name=v.spec.name, charger_id=v.charger_id, arrival_s=v.spec.arrival_s, energy_wh=delivered,
            completion_s=completion if completion is not None else v.end_s - v.spec.arrival_s,
            finished=completion is not None,
            waited_s=(first_draw if first_draw is not None else v.end_s) - v.spec.arrival_s))
    peak = tuple(max((load[p] for load in site_load), default=0.0) for p in range(3))
    return RunResult(duration_s=setup.duration_s, cars=tuple(cars), over_limit_amp_seconds=0.0,
                     over_limit_strict_amp_seconds=0.0, over_limit_by_constraint={},
                     peak_a=(peak[0], peak[1], peak[2]))
