"""Runs policies on scenarios and turns results into the benchmark's figures and its targets.

The figures per (scenario, policy) are the ones ``docs/benchmark.md`` defines; powershare also gets its ratios to
the optimum's energy and to static split's mean completion time, and a verdict on each target:

* ``over_limit_zero``: ``over_limit_amp_seconds == 0``;
* ``energy_vs_optimum``: at least ``ENERGY_TARGET`` of the optimum's energy;
* ``beats_static_completion``: a lower mean completion time than static split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from gateway.sim.bench.optimum import solve_optimum
from gateway.sim.bench.peers import PEERS
from gateway.sim.bench.policies import NaiveEqual, StaticSplit
from gateway.sim.bench.powershare import Powershare
from gateway.sim.virtual_site import Policy, RunResult, SiteSetup, run_site
from gateway.site.config import ControlConfig

ENERGY_TARGET = 0.97
OPTIMUM = "optimum"
POLICY_FACTORIES: Mapping[str, Callable[[SiteSetup], Policy]] = {
    "static_split": StaticSplit,
    "naive_equal": NaiveEqual,
    **PEERS,
    "powershare": Powershare,
}
POLICIES = (*POLICY_FACTORIES, OPTIMUM)


def run_policy(policy: str, setup: SiteSetup, order: Literal["fair", "shortest_first"] = "fair") -> RunResult:
    """One run; the optimum is solved rather than simulated (raises ``SolverMissing`` without scipy). ``order`` is
    powershare's ``control.order``."""
    if policy == OPTIMUM:
        return solve_optimum(setup)
    if policy == "powershare":
        return run_site(setup, Powershare(setup, ControlConfig(order=order)))
    return run_site(setup, POLICY_FACTORIES[policy](setup))


def figures(result: RunResult) -> dict[str, Any]:
    return {
        "energy_kwh": round(result.energy_kwh, 3),
        "over_limit_amp_seconds": round(result.over_limit_amp_seconds, 3),
        "over_limit_strict_amp_seconds": round(result.over_limit_strict_amp_seconds, 3),
        "over_limit_by_constraint": {k: round(v, 3) for k, v in result.over_limit_by_constraint.items()},
        "mean_completion_h": round(result.mean_completion_h, 4),
        "longest_wait_h": round(result.longest_wait_h, 4),
        "unfinished": result.unfinished,
        "cars": len(result.cars),
        "peak_a": {name: round(amps, 2) for name, amps in zip(("L1", "L2", "L3"), result.peak_a, strict=True)},
    }


def energy_ratio(result: RunResult, results: Mapping[str, RunResult]) -> float | None:
    """Any policy's energy ÷ the optimum's (None without an optimum run)."""
    optimum = results.get(OPTIMUM)
    return round(result.energy_kwh / optimum.energy_kwh, 4) if optimum is not None and optimum.energy_kwh > 0 \
        else None


def versus_peers(results: Mapping[str, RunResult]) -> dict[str, Any]:
    """powershare's energy and mean completion ÷ each peer's, from the same run, and whether it is at least as good
    as every peer on both (energy ratio ≥ 1, completion ratio ≤ 1)."""
    own = results["powershare"]
    ratios: dict[str, dict[str, float | None]] = {}
    for name in PEERS:
        peer = results.get(name)
        if peer is None:
            continue
        ratios[name] = {
            "energy": round(own.energy_kwh / peer.energy_kwh, 4) if peer.energy_kwh > 0 else None,
            "completion": round(own.mean_completion_h / peer.mean_completion_h, 4)
            if peer.mean_completion_h > 0 else None}
    return {
        "ratios": ratios,
        "energy_at_least_every_peer": all(r["energy"] is None or r["energy"] >= 1 for r in ratios.values())
        if ratios else None,
        "completion_at_most_every_peer": all(r["completion"] is None or r["completion"] <= 1 for r in ratios.values())
        if ratios else None,
    }


def powershare_ratios(results: Mapping[str, RunResult]) -> dict[str, Any]:
    """powershare against the optimum and static split, and the targets it meets (None: no reference run)."""
    own = results["powershare"]
    optimum, static = results.get(OPTIMUM), results.get("static_split")
    energy_ratio = own.energy_kwh / optimum.energy_kwh if optimum is not None and optimum.energy_kwh > 0 else None
    completion_ratio = (own.mean_completion_h / static.mean_completion_h
                        if static is not None and static.mean_completion_h > 0 else None)
    return {
        "energy_ratio_to_optimum": round(energy_ratio, 4) if energy_ratio is not None else None,
        "completion_ratio_to_static": round(completion_ratio, 4) if completion_ratio is not None else None,
        "versus_peers": versus_peers(results),
        "targets": {
            "over_limit_zero": own.over_limit_amp_seconds == 0,
            "energy_vs_optimum": energy_ratio >= ENERGY_TARGET if energy_ratio is not None else None,
            "beats_static_completion": completion_ratio < 1 if completion_ratio is not None else None,
        },
    }
