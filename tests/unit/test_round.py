"""The control round and the invariant it checks, on small hand-made sites (the golden scenarios, the property
tests and the benchmark run the same round at scale)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from drivers.model import ChargerReading, Iec61851State
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.invariant import Load, room, violations
from gateway.core.round import ControlRound, Outcome, run_now
from gateway.site.config import ControlConfig


def spec(cid: str, phases: tuple[int, ...] = (0, 1, 2), nodes: tuple[str, ...] = ("site",)) -> ChargerSpec:
    return ChargerSpec(id=cid, nodes=nodes, site_phases=phases, max_current_a=32.0)


def charging(amps: float, setpoint: float) -> Observation:
    return Observation(ChargerReading(state=Iec61851State.C, current_a=(amps, amps, amps), setpoint_a=setpoint))


def limits(amps: float) -> Limits:
    return Limits(node_limits_a={"site": (amps, amps, amps)})


class Recorder:
    """A link that records every exchange; ``answer`` decides each write's outcome."""

    def __init__(self, answer: Outcome = Outcome.DONE) -> None:
        self.answer = answer
        self.batches: list[list[SetpointCommand]] = []
        self.failsafes: list[tuple[str, float]] = []
        self.at = 0.0

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        self.batches.append(list(commands))
        return [self.answer] * len(commands)

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        self.failsafes.append((charger_id, current_a))
        return self.answer

    def now(self) -> float:
        return self.at


def test_room_and_violations_count_each_load_on_its_path_and_phases() -> None:
    node_limits = {"site": (40.0, 40.0, 40.0), "row": (20.0, 20.0, 20.0)}
    loads = [Load(("row", "site"), (16.0, 0.0, 0.0)), Load(("row", "site"), (10.0, 10.0, 0.0)),
             Load(("site",), (10.0, 10.0, 10.0))]
    left = room(node_limits, loads)
    assert left[("row", 0)] == -6.0 and left[("row", 1)] == 10.0 and left[("row", 2)] == 20.0
    assert left[("site", 0)] == 4.0 and left[("site", 2)] == 30.0
    found = violations(node_limits, loads)
    assert [(v.node, v.phase, v.excess_a) for v in found] == [("row", 0, 6.0)]
    assert str(found[0]) == "row L1: 26.00 A booked > 20 A"
    with pytest.raises(KeyError):
        room(node_limits, [Load(("elsewhere",), (1.0, 0.0, 0.0))])


def test_decreases_are_sent_first_and_an_increase_from_zero_is_an_increase() -> None:
    control = ControlRound(Controller([spec("a"), spec("b")], ControlConfig()))
    link = Recorder()
    idle = Observation(ChargerReading(state=Iec61851State.A, current_a=(0.0, 0.0, 0.0), setpoint_a=0.0))
    run_now(control.run(0.0, {"a": charging(0.0, 0.0), "b": idle}, limits(48), link))
    assert link.batches == [[SetpointCommand("a", 32.0)]]  # from 0 A: an increase, sent alone
    for t in range(1, 20):
        run_now(control.run(float(t), {"a": charging(32.0, 32.0), "b": idle}, limits(48), link))
    link.batches.clear()
    plan = run_now(control.run(20.0, {"a": charging(32.0, 32.0), "b": charging(0.0, 0.0)}, limits(48), link))
    assert plan.decreases == (SetpointCommand("a", 24.0),) and plan.increases == (SetpointCommand("b", 16.0),)
    assert link.batches == [[SetpointCommand("a", 24.0)], [SetpointCommand("b", 16.0)]]
    assert control.violation_rounds == 0


def test_a_round_whose_commands_overload_a_node_is_counted_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.core.round")  # whatever another test left on "gateway"
    control = ControlRound(Controller([spec("a"), spec("b")], ControlConfig()))
    link = Recorder()
    run_now(control.run(0.0, {"a": charging(0.0, 0.0), "b": charging(0.0, 0.0)}, limits(32), link))
    assert control.violation_rounds == 0 and control.excess_a == 0.0
    for t in (1.0, 2.0):  # a shell that wrote more than the round planned
        control.plan(t, {"a": charging(16.0, 16.0), "b": charging(16.0, 16.0)}, limits(32))
        control.report(SetpointCommand("a", 30.0), Outcome.DONE, t)
        control.check()
    assert control.violation_rounds == 1  # the second round added nothing to the excess
    assert control.excess_a == 14.0
    assert sum("safety invariant broken" in r.message for r in caplog.records) == 3  # once per phase


def test_a_lowered_limit_is_excess_not_a_violation() -> None:
    control = ControlRound(Controller([spec("a")], ControlConfig(vehicle_response_s=5.0)))
    link = Recorder()
    run_now(control.run(0.0, {"a": charging(0.0, 0.0)}, limits(32), link))
    for t in range(1, 10):
        run_now(control.run(float(t), {"a": charging(32.0, 32.0)}, limits(32), link))
    run_now(control.run(10.0, {"a": charging(32.0, 32.0)}, limits(10), link))
    assert control.excess_a == 22.0 and control.violation_rounds == 0  # booked at 32 A until the car comes down
    for t in range(11, 17):
        run_now(control.run(float(t), {"a": charging(10.0, 10.0)}, limits(10), link))
    assert control.excess_a == 0.0 and control.violation_rounds == 0


def test_failsafes_are_programmed_once_retried_after_a_failure_and_never_when_unsupported() -> None:
    control = ControlRound(Controller([spec("a"), spec("b")], ControlConfig()))
    link = Recorder(Outcome.TIMED_OUT)
    control.plan(0.0, {}, limits(40))
    run_now(control.program_failsafe("a", link))
    link.answer = Outcome.DONE
    run_now(control.program_failsafe("a", link))
    run_now(control.program_failsafe("a", link))
    link.answer = Outcome.UNSUPPORTED
    run_now(control.program_failsafe("b", link))
    run_now(control.program_failsafe("b", link))
    assert link.failsafes == [("a", 20.0), ("a", 20.0), ("b", 20.0)]
    control.plan(1.0, {}, limits(24))  # the share changes with the limit
    link.answer = Outcome.DONE
    run_now(control.program_failsafe("a", link))
    assert link.failsafes[-1] == ("a", 12.0) and control.failsafe_due("b") is None


def test_run_now_refuses_a_link_that_waits() -> None:
    class Waits(Recorder):
        async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
            await _Suspend()
            return []

    control = ControlRound(Controller([spec("a")], ControlConfig()))
    with pytest.raises(RuntimeError, match="event loop"):
        run_now(control.run(0.0, {"a": charging(0.0, 0.0)}, limits(32), Waits()))


class _Suspend:
    def __await__(self):  # type: ignore[no-untyped-def]
        yield None
