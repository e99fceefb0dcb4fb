"""Runs a golden scenario file through the gateway's control round (``gateway.core.round``), one virtual second at a
time: the same round the supervisor runs, over a link to simulated devices instead of Modbus.

Each charger is a tiny simulated device (setpoint, fail-safe current, communication watchdog) with the shared
vehicle model behind it, so the scenarios exercise the same lag and ramp-down that real cars have. On every tick the
physical currents of the vehicles are checked against every node and phase limit: a lowered limit is allowed the
vehicles' response time (``GRACE_S``) to be met, since no car can stop drawing faster than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.model import ChargerReading, Iec61851State
from drivers.sim.vehicle import Vehicle, VehicleSpec
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand
from gateway.core.round import ControlRound, Outcome, run_now
from gateway.site.config import ControlConfig

GRACE_S = 5.0
"""IEC 61851-1 gives a vehicle up to 5 s to follow a lower current: a lowered limit is checked after this."""
PHASES = {"L1": 0, "L2": 1, "L3": 2}


@dataclass
class SimCharger:
    spec: ChargerSpec
    comm_timeout_s: float = 30.0
    online: bool = True
    setpoint_a: float = 0.0
    failsafe_a: float = 0.0
    last_contact_s: float = 0.0
    rejoined_s: float = -GRACE_S
    vehicle: Vehicle | None = None

    def offered_a(self, now: float) -> float:
        """After its watchdog expires a device offers its fail-safe current; when it hears the gateway again it
        resumes its last setpoint at once (the harsher of the two behaviours real devices show)."""
        if not self.online and self.spec.has_failsafe and now - self.last_contact_s > self.comm_timeout_s:
            return self.failsafe_a
        return self.setpoint_a

    def site_currents(self) -> list[float]:
        out = [0.0, 0.0, 0.0]
        if self.vehicle is not None:
            for charger_phase, amps in enumerate(self.vehicle.phase_currents_a()):
                if charger_phase < len(self.spec.site_phases):
                    out[self.spec.site_phases[charger_phase]] += amps
        return out


@dataclass
class Violation:
    at: float
    what: str


@dataclass
class ScenarioRun:
    """The outcome: per-tick setpoints, every violation, and what the expectations saw."""

    timeline: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    served: set[str] = field(default_factory=set)
    """Chargers that were given current while a vehicle was plugged in."""


def _limits_of(value: Any) -> tuple[float, float, float]:
    if isinstance(value, list):
        return (float(value[0]), float(value[1]), float(value[2]))
    return (float(value), float(value), float(value))


def build(site: dict[str, Any]) -> tuple[dict[str, ChargerSpec], dict[str, tuple[float, float, float]], ControlConfig]:
    circuits: dict[str, dict[str, Any]] = site.get("circuits", {})
    node_limits = {"site": _limits_of(site["limit_a"])}
    for cid, c in circuits.items():
        node_limits[cid] = _limits_of(c["limit_a"])

    def path(node: str) -> tuple[str, ...]:
        out = [node]
        while out[-1] != "site":
            out.append(circuits[out[-1]].get("parent", "site"))
        return tuple(out)

    specs = {}
    for cid, c in site["chargers"].items():
        rotation = c.get("phases", "L1L2L3")
        site_phases = tuple(PHASES[rotation[i:i + 2]] for i in range(0, len(rotation), 2))
        specs[cid] = ChargerSpec(
            id=cid, nodes=path(c.get("circuit", "site")), site_phases=site_phases,
            max_current_a=float(c.get("max_a", 32)), has_failsafe=c.get("failsafe", True),
            priority=int(c.get("priority", 0)),
            weight=float(c.get("weight", 1.0)))
    settings = ControlConfig(**site.get("settings", {}))
    return specs, node_limits, settings


class _Link:
    """``gateway.core.round.Link`` to the simulated devices; every write completes at once."""

    def __init__(self, chargers: dict[str, SimCharger], result: ScenarioRun) -> None:
        self.chargers = chargers
        self.result = result
        self.at = 0.0

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        return [self._write(c) for c in commands]

    def _write(self, command: SetpointCommand) -> Outcome:
        charger = self.chargers[command.charger_id]
        spec = charger.spec
        if 0 < command.current_a < spec.min_current_a or command.current_a > spec.max_current_a + 1e-9:
            self.result.violations.append(Violation(self.at, f"{command.charger_id} commanded {command.current_a} A"))
        if not charger.online:
            return Outcome.TIMED_OUT
        charger.setpoint_a = command.current_a
        if charger.vehicle is not None:
            charger.vehicle.offer(command.current_a, self.at)
        return Outcome.DONE

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        charger = self.chargers[charger_id]
        if not charger.online:
            return Outcome.TIMED_OUT
        charger.failsafe_a = current_a
        charger.last_contact_s = self.at
        return Outcome.DONE

    def now(self) -> float:
        return self.at


def run(scenario: dict[str, Any]) -> ScenarioRun:
    specs, node_limits, settings = build(scenario["site"])
    control = ControlRound(Controller(list(specs.values()), settings))
    chargers = {cid: SimCharger(spec, float(scenario["site"]["chargers"][cid].get("comm_timeout_s", 30)))
                for cid, spec in specs.items()}
    enabled = bool(scenario["site"].get("enabled", True))
    unit_caps: dict[str, float] = {}
    events = sorted(scenario.get("events", []), key=lambda e: e["at"])
    expects = sorted(scenario.get("expect", []), key=lambda e: e["at"])
    end = int(scenario.get("run_until", max([e["at"] for e in events + expects] + [0]) + 1))
    history: list[tuple[float, dict[str, tuple[float, float, float]]]] = []
    result = ScenarioRun()
    link = _Link(chargers, result)

    for tick in range(end + 1):
        now = link.at = float(tick)
        for event in [e for e in events if e["at"] == tick]:
            enabled = _apply_event(event, chargers, node_limits, unit_caps, enabled, now)
        history.append((now, dict(node_limits)))
        limits = Limits(node_limits_a=dict(node_limits), enabled=enabled, unit_caps_a=dict(unit_caps))

        observations = {}
        for cid, charger in chargers.items():
            if charger.vehicle is not None:
                charger.vehicle.offer(charger.offered_a(now), now)
                charger.vehicle.advance(now)
            if charger.online:
                charger.last_contact_s = now
                observations[cid] = Observation(_reading(charger, now))
            else:
                observations[cid] = Observation(None, "timeout")
        broken = control.violation_rounds
        run_now(control.run(now, observations, limits, link))
        if control.violation_rounds != broken:
            result.violations.append(Violation(now, "the round's commands broke the booking invariant"))
        for cid, obs in observations.items():
            if obs.reading is not None:
                run_now(control.program_failsafe(cid, link))
        result.served |= {cid for cid, c in chargers.items() if c.setpoint_a > 0 and c.vehicle is not None}
        result.timeline.append(f"t={tick:>5}: " + " ".join(
            f"{cid}={c.setpoint_a:g}{'' if c.online else '(off)'}/{max(c.site_currents()):.1f}A"
            for cid, c in chargers.items()))
        _check_physical(now, chargers, specs, history, result)
        for expect in [e for e in expects if e["at"] == tick]:
            _check_expect(expect, chargers, control.controller, now, result)
    return result


def _apply_event(event: dict[str, Any], chargers: dict[str, SimCharger],
                 node_limits: dict[str, tuple[float, float, float]], unit_caps: dict[str, float], enabled: bool,
                 now: float) -> bool:
    if "plug" in event:
        car = event.get("car", {})
        charger = chargers[event["plug"]]
        charger.vehicle = Vehicle(VehicleSpec(
            name=event["plug"], onboard_limit_a=float(car.get("limit_a", 32)), phases=int(car.get("phases", 3)),
            battery_kwh=float(car.get("battery_kwh", 60)), soc_start=float(car.get("soc", 0.3)),
            arrival_s=now, lag_s=float(car.get("lag_s", 2.0))))
    if "unplug" in event:
        chargers[event["unplug"]].vehicle = None
    if "limit_a" in event:
        node_limits[event.get("node", "site")] = _limits_of(event["limit_a"])
    if "offline" in event:
        chargers[event["offline"]].online = False
    if "online" in event:
        chargers[event["online"]].online = True
        chargers[event["online"]].rejoined_s = now
    if "unit_limit_a" in event:
        unit_caps[event["charger"]] = float(event["unit_limit_a"])
    if "enable" in event:
        enabled = bool(event["enable"])
    return enabled


def _reading(charger: SimCharger, now: float) -> ChargerReading:
    vehicle = charger.vehicle
    if vehicle is None or not vehicle.present(now):
        return ChargerReading(state=Iec61851State.A, current_a=(0.0, 0.0, 0.0), setpoint_a=charger.setpoint_a)
    currents = vehicle.phase_currents_a()
    n = len(charger.spec.site_phases)
    return ChargerReading(state=vehicle.state(now), current_a=(currents[0], currents[1] if n > 1 else None,
                                                               currents[2] if n > 2 else None),
                          setpoint_a=charger.setpoint_a)


def _check_physical(now: float, chargers: dict[str, SimCharger], specs: dict[str, ChargerSpec],
                    history: list[tuple[float, dict[str, tuple[float, float, float]]]], result: ScenarioRun) -> None:
    """Physical current per node and phase within the most generous limit of the last GRACE_S seconds.

    The one exception is physics, not policy: if the limit is lowered below what chargers that cannot be reached
    still draw (their fail-safe or last setpoint), the commanded chargers must be at zero; more cannot be done. A
    charger that has just answered again is given the same response time to come down as after a limit change.
    """
    load: dict[tuple[str, int], float] = {}
    unreachable: dict[tuple[str, int], float] = {}
    for cid, charger in chargers.items():
        for phase, amps in enumerate(charger.site_currents()):
            for node in specs[cid].nodes:
                load[(node, phase)] = load.get((node, phase), 0.0) + amps
                if not charger.online or now - charger.rejoined_s <= GRACE_S:
                    unreachable[(node, phase)] = unreachable.get((node, phase), 0.0) + amps
    recent = [limits for t, limits in history if now - t <= GRACE_S]
    for (node, phase), amps in load.items():
        allowed = max(max(limits[node][phase] for limits in recent), unreachable.get((node, phase), 0.0))
        if amps > allowed + 1e-6:
            result.violations.append(Violation(now, f"{node} L{phase + 1} carries {amps:.2f} A > {allowed:g} A"))


def _check_expect(expect: dict[str, Any], chargers: dict[str, SimCharger], controller: Controller, now: float,
                  result: ScenarioRun) -> None:
    views = {v.id: v for v in controller.views(now)}
    for cid, amps in expect.get("setpoints", {}).items():
        got = chargers[cid].setpoint_a
        if not math.isclose(got, float(amps), abs_tol=1e-6):
            result.mismatches.append(f"t={now:g}: {cid} setpoint {got:g} A, expected {amps} A")
    for cid, amps in expect.get("at_least", {}).items():
        if chargers[cid].setpoint_a < float(amps):
            result.mismatches.append(f"t={now:g}: {cid} setpoint {chargers[cid].setpoint_a:g} A, expected >= {amps}")
    if "unavailable" in expect:
        got_ids = sorted(cid for cid, v in views.items() if not v.reachable)
        if got_ids != sorted(expect["unavailable"]):
            result.mismatches.append(f"t={now:g}: unavailable {got_ids}, expected {sorted(expect['unavailable'])}")
    if "waiting" in expect:
        got_ids = sorted(cid for cid, v in views.items() if v.waiting)
        if got_ids != sorted(expect["waiting"]):
            result.mismatches.append(f"t={now:g}: waiting {got_ids}, expected {sorted(expect['waiting'])}")
    if "charging_count" in expect:
        count = sum(1 for c in chargers.values() if c.setpoint_a > 0)
        if count != expect["charging_count"]:
            result.mismatches.append(f"t={now:g}: {count} chargers given current, expected {expect['charging_count']}")
