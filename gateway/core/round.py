"""One control round: the only code that calls ``Controller.step`` and carries out what it returns.

A round is: hand the controller the polls and the limits; send the decreases it returns; once every decrease has an
outcome, send the increases; report every outcome back (``write_done``); check the safety invariant. Between rounds,
each charger that answered a poll has its fail-safe current programmed to the controller's fair share when that
changed or was not acknowledged yet. The real-time supervisor, the virtual-time site of the benchmark and the golden
scenarios all drive this one ``ControlRound``, so what the tests and the benchmark prove is what the gateway runs.

Why a coroutine over a ``Link``, and no asyncio: the I/O (Modbus, OCPP, a simulated device) belongs to the shell,
the order of the protocol to the core. ``run`` and ``program_failsafe`` are ``async def`` only so that the
supervisor's link can await its buses (and write different buses at once); this module awaits nothing but the link
and imports no event loop. A link that does its I/O synchronously (the simulators) completes every await at once,
and ``run_now`` drives the coroutine to its end without a loop. So the decisions stay synchronous in the core, the
order of the protocol is written once, and the virtual-time site stays as fast as before.

The invariant (``gateway.core.invariant``) is checked after every round. Bookings above a limit are not by
themselves a fault: when a limit is lowered, every car is booked at its old current until it has come down (up to
the vehicle response time), and a charger that cannot be reached is booked at what it may still draw whatever the
limit. What the gateway must never do is *add* to a node and phase that is, or thereby becomes, over its limit. A
round that does is a violation: logged once per node and phase as it starts and counted
(``violation_rounds``; tests assert it stays 0). ``excess_a`` is the worst amount by which bookings exceed a limit
after the round, whatever the cause, for the read model.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.invariant import TOLERANCE_A, NodePhase, room, violations

log = logging.getLogger(__name__)

T = TypeVar("T")


class Outcome(Enum):
    """What became of one write. Only ``DONE`` is an acknowledgement; after ``FAILED`` or ``TIMED_OUT`` the device may
    or may not have applied the value, so the higher of old and new stays booked."""

    DONE = "done"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    UNSUPPORTED = "unsupported"
    """The device has no such feature (a fail-safe current it cannot be programmed with): never asked again."""


class Link(Protocol):
    """The shell's side of a round: the I/O, and the time at which an outcome became known."""

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        """Write every command, one outcome each, in the same order. Commands to one device or one bus are
        written in the order given; different buses may be written at once. Never raises for a device's failure:
        that is an outcome."""
        ...

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        """Program the current the charger falls back to if the gateway goes silent."""
        ...

    def now(self) -> float:
        """The controller's clock, in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class Plan:
    """The commands of one round, in the order they are sent."""

    decreases: tuple[SetpointCommand, ...]
    increases: tuple[SetpointCommand, ...]


class ControlRound:
    """Owns a controller and drives it round after round; keeps what the invariant check and fail-safes need."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.violation_rounds = 0
        """Rounds since start in which the gateway's own commands broke the invariant (should stay 0)."""
        self.excess_a = 0.0
        """After the last round: the worst amount, in A, by which bookings exceed a limit (0: all within)."""
        self._violating: set[NodePhase] = set()
        self._limits: Limits | None = None
        self._before: dict[NodePhase, float] = {}
        self._commanded = False
        self._shares: dict[str, float] = {}
        self._shares_for: Limits | None = None
        self._failsafe_ok: dict[str, float] = {}
        """The fail-safe current each charger acknowledged (what not to program again)."""
        self._failsafe_unsupported: set[str] = set()

    def reconfigure(self, chargers: Sequence[ChargerSpec]) -> None:
        """Change the chargers; a charger whose spec changed (or that is new) has its fail-safe programmed anew."""
        old = {spec.id: spec for spec in self.controller.specs()}
        self.controller.reconfigure(chargers)
        for spec in chargers:
            if old.get(spec.id) != spec:
                self._failsafe_ok.pop(spec.id, None)
                self._failsafe_unsupported.discard(spec.id)
        self._shares_for = None

    # -- the round -------------------------------------------------------------------------------------------------
    async def run(self, now: float, observations: Mapping[str, Observation], limits: Limits, link: Link) -> Plan:
        """One round: plan, send the decreases, then the increases, report every outcome, check the invariant."""
        plan = self.plan(now, observations, limits)
        for batch in (plan.decreases, plan.increases):
            if batch:
                outcomes = await link.write_setpoints(batch)
                if len(outcomes) != len(batch):
                    raise ValueError(f"link answered {len(outcomes)} outcomes for {len(batch)} writes")
                at = link.now()
                for command, outcome in zip(batch, outcomes, strict=True):
                    self.report(command, outcome, at)
        self.check()
        return plan

    def plan(self, now: float, observations: Mapping[str, Observation], limits: Limits) -> Plan:
        """Ingest the polls and decide; remembers the bookings before any command, for ``check``."""
        self.controller.observe(now, observations)
        booked = self.controller.bookings()
        self._limits = limits
        self._before = room(limits.node_limits_a, booked.values())
        self._commanded = False
        decreases, increases = self.controller.decide(now, limits, booked)
        if limits != self._shares_for:  # the fair share changes only with the limits (or the chargers)
            self._shares, self._shares_for = self.controller.failsafe_currents(limits), limits
        return Plan(tuple(decreases), tuple(increases))

    def report(self, command: SetpointCommand, outcome: Outcome, now: float) -> None:
        """Tell the controller; the link logs why a write failed, since only it knows."""
        self._commanded = True
        self.controller.write_done(command.charger_id, command.current_a, outcome is Outcome.DONE, now)

    def check(self) -> None:
        """The invariant after the round's commands: count a round that added to an overloaded node and phase."""
        if self._limits is None:
            return
        if not self._commanded:  # nothing was sent: the bookings are those the round started from
            worst = -min(self._before.values(), default=0.0)
            self.excess_a = worst if worst > TOLERANCE_A else 0.0
            self._violating = set()
            return
        limits = self._limits.node_limits_a
        over = violations(limits, self.controller.bookings().values())
        self.excess_a = over[0].excess_a if over else 0.0
        ours = [v for v in over
                if -self._before.get((v.node, v.phase), 0.0) < v.excess_a - TOLERANCE_A]
        keys = {(v.node, v.phase) for v in ours}
        for v in ours:
            if (v.node, v.phase) not in self._violating:
                log.error("safety invariant broken by the gateway's own commands: %s", v)
        if ours:
            self.violation_rounds += 1
        self._violating = keys

    # -- fail-safes --------------------------------------------------------------------------------------------------
    def failsafe_due(self, charger_id: str) -> float | None:
        """The fail-safe current to program now, or None if it is programmed (or cannot be)."""
        wanted = self._shares.get(charger_id)
        if (wanted is None or charger_id in self._failsafe_unsupported
                or not self.controller.has_failsafe(charger_id) or self._failsafe_ok.get(charger_id) == wanted):
            return None
        return wanted

    async def program_failsafe(self, charger_id: str, link: Link) -> None:
        """Program the charger's fail-safe current if due; call it for a charger that has just answered a poll."""
        amps = self.failsafe_due(charger_id)
        if amps is None:
            return
        outcome = await link.program_failsafe(charger_id, amps)
        if outcome is Outcome.UNSUPPORTED:
            self._failsafe_unsupported.add(charger_id)
            return
        if outcome is Outcome.DONE:
            self._failsafe_ok[charger_id] = amps
        else:
            self._failsafe_ok.pop(charger_id, None)
        self.controller.failsafe_done(charger_id, amps, outcome is Outcome.DONE)


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a round over a link whose I/O completes at once (a simulator), without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the link suspended: a link that waits for I/O needs an event loop")
