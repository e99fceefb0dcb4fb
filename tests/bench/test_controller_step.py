"""How long one control round takes, for 6, 240 and 1,000 chargers in a 3-level circuit tree.

``python -m pytest tests/bench/test_controller_step.py --benchmark-enable -q`` prints pytest-benchmark's table:
one ``ControlRound.run`` with every car charging (ingestion, learning, bookings, allocation, hysteresis,
sequencing, outcomes and the invariant check; writes complete at once) against, as the baseline measured in the
same run, the allocation alone on the same site. Normal runs execute each case once as a correctness check.
Timings are printed, never asserted.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from drivers.model import ChargerReading, Iec61851State
from gateway.core.allocation import Request, allocate
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.deadlines import Need
from gateway.core.round import ControlRound, Outcome, run_now
from gateway.site.config import ControlConfig


def site(n: int) -> tuple[list[ChargerSpec], Limits]:
    """Boards under feeders under the site; every third charger single-phase, rotated over the phases."""
    boards = [f"board{i}" for i in range(max(1, n // 10))]
    specs = []
    for i in range(n):
        board = boards[i % len(boards)]
        feeder = f"feeder{(i % len(boards)) % 10}"
        phases = (0, 1, 2) if i % 3 else ((i // 3) % 3,)
        specs.append(ChargerSpec(id=f"c{i}", nodes=(board, feeder, "site"), site_phases=phases, max_current_a=32))
    node_limits = {"site": (n * 8.0,) * 3}
    node_limits.update({f"feeder{j}": (n * 1.2 + 12,) * 3 for j in range(10)})
    node_limits.update({board: (40.0,) * 3 for board in boards})
    return specs, Limits(node_limits_a=node_limits)


class Accepts:
    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        return [Outcome.DONE] * len(commands)

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        return Outcome.DONE

    def now(self) -> float:
        return 0.0


@pytest.mark.parametrize("n", [6, 240, 1000])
def test_controller_step(benchmark: BenchmarkFixture, n: int) -> None:
    specs, limits = site(n)
    controller = Controller(specs, ControlConfig())
    control = ControlRound(controller)
    link = Accepts()
    reading = ChargerReading(state=Iec61851State.C, current_a=(10.0, 10.0, 10.0))
    observations = {s.id: Observation(reading) for s in specs}
    clock = itertools.count()

    def step() -> int:
        plan = run_now(control.run(float(next(clock)), observations, limits, link))
        return len(plan.decreases) + len(plan.increases)

    benchmark.group = f"controller, {n} chargers"
    benchmark.pedantic(step, rounds=30 if n > 100 else 300, warmup_rounds=2)
    assert all(v.setpoint_a is not None for v in controller.views(float(next(clock))))
    assert control.violation_rounds == 0


@pytest.mark.parametrize("n", [6, 240, 1000])
def test_controller_step_with_deadlines(benchmark: BenchmarkFixture, n: int) -> None:
    """The same step with every other session carrying a departure and energy wanted (``gateway.core.deadlines``):
    the reservation pass in departure order plus the usual allocation."""
    specs, limits = site(n)
    controller = Controller(specs, ControlConfig())
    controller.set_needs({s.id: Need(departure_s=3600.0 + 60 * i, energy_wh=20_000.0)
                          for i, s in enumerate(specs) if i % 2 == 0})
    reading = ChargerReading(state=Iec61851State.C, current_a=(10.0, 10.0, 10.0), session_energy_wh=1000.0)
    observations = {s.id: Observation(reading) for s in specs}
    clock = itertools.count()

    control = ControlRound(controller)
    link = Accepts()

    def step() -> int:
        plan = run_now(control.run(float(next(clock)), observations, limits, link))
        return len(plan.decreases) + len(plan.increases)

    benchmark.group = f"controller, {n} chargers"
    benchmark.pedantic(step, rounds=30 if n > 100 else 300, warmup_rounds=2)
    assert all(v.setpoint_a is not None for v in controller.views(float(next(clock))))


@pytest.mark.parametrize("n", [6, 240, 1000])
def test_allocation_alone_baseline(benchmark: BenchmarkFixture, n: int) -> None:
    specs, limits = site(n)
    capacity = {(node, p): per_phase[p] for node, per_phase in limits.node_limits_a.items() for p in range(3)}
    requests = [Request(s.id, s.nodes, s.site_phases, s.max_current_a) for s in specs]
    benchmark.group = f"controller, {n} chargers"
    grants = benchmark.pedantic(allocate, args=(requests, capacity), rounds=30 if n > 100 else 300)
    assert len(grants) == n


def test_step_percentiles_at_240_chargers(capsys: pytest.CaptureFixture[str]) -> None:
    """Median and p99 of 600 steps at 240 chargers, without and with needs on every other session, the two
    interleaved step by step so that both see the same machine load. The figure docs/benchmark.md reports."""
    rigs = []
    for with_needs in (False, True):
        specs, limits = site(240)
        controller = Controller(specs, ControlConfig())
        if with_needs:
            controller.set_needs({s.id: Need(departure_s=3600.0 + 60 * i, energy_wh=20_000.0)
                                  for i, s in enumerate(specs) if i % 2 == 0})
        reading = ChargerReading(state=Iec61851State.C, current_a=(10.0, 10.0, 10.0), session_energy_wh=1000.0)
        rigs.append((ControlRound(controller), {s.id: Observation(reading) for s in specs}, limits, []))
    link = Accepts()
    for step in range(620):
        for control, observations, limits, times in rigs:
            started = time.perf_counter()
            run_now(control.run(float(step), observations, limits, link))
            if step >= 20:  # warm-up
                times.append((time.perf_counter() - started) * 1e3)
    with capsys.disabled():
        for label, (control, _, _, times) in zip(("without needs", "with needs"), rigs, strict=True):
            ordered = sorted(times)
            print(f"\n240 chargers, {label}: median {statistics.median(ordered):.1f} ms, "
                  f"p99 {ordered[round(0.99 * (len(ordered) - 1))]:.1f} ms, max {ordered[-1]:.1f} ms "
                  f"({len(ordered)} steps)")
            assert control.violation_rounds == 0
