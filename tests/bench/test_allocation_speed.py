"""How long one allocation takes: the fast ``allocate`` against the reference, on the same seeded instances.

``python -m pytest tests/bench --benchmark-enable -q`` prints pytest-benchmark's table, then a summary with the
median and 99th percentile per size and the reference/allocate ratio. Normal runs (benchmarks disabled) execute
each case once as a correctness check, and skip the reference at 10,000 chargers (it takes seconds per call).
Timings are printed, never asserted.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from support.reference_allocation import reference_allocate

from gateway.core.allocation import NodePhase, Request, allocate
from gateway.sim.allocation_bench import build_instance

ROUNDS = {"allocate": {100: 1000, 1000: 200, 10_000: 30}, "reference": {100: 100, 1000: 20, 10_000: 3}}
IMPLEMENTATIONS = {"allocate": allocate, "reference": reference_allocate}


@pytest.mark.parametrize("n", [100, 1000, 10_000])
@pytest.mark.parametrize("implementation", ["allocate", "reference"])
def test_allocation_speed(benchmark: BenchmarkFixture, speed_log: dict[tuple[str, int], list[float]],
                          implementation: str, n: int) -> None:
    if implementation == "reference" and n > 1000 and benchmark.disabled:
        pytest.skip("the reference takes seconds at this size; measured with --benchmark-enable")
    requests, capacity = build_instance(n)
    benchmark.group = f"allocation, {n} chargers"
    grant = benchmark.pedantic(IMPLEMENTATIONS[implementation], args=(requests, capacity),
                               rounds=ROUNDS[implementation][n], warmup_rounds=1)
    if benchmark.stats is not None:
        speed_log[implementation, n] = list(benchmark.stats.stats.data)
    assert_fits(grant, requests, capacity)
    if implementation == "reference":
        fast = allocate(requests, capacity)
        assert max(abs(fast[c] - grant[c]) for c in grant) <= 1e-6


def assert_fits(grant: dict[str, float], requests: list[Request], capacity: dict[NodePhase, float]) -> None:
    load = dict.fromkeys(capacity, 0.0)
    for r in requests:
        for key in r.constraints():
            load[key] += grant[r.charger_id]
    assert all(load[key] <= max(limit, 0.0) + 1e-9 for key, limit in capacity.items())
    assert sum(1 for amps in grant.values() if amps > 0) > len(requests) // 2
