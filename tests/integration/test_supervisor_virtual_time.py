"""The real supervisor, in virtual time, against chargers whose links fail, lag, apply a write but lose the answer,
and come back, with simulated cars behind them (``support.fake_chargers``, ``drivers.sim.vehicle``).

The property: on every tick of every example, the physical current on every node and phase stays within the most
generous limit of the last ``GRACE_S`` (a lowered limit takes a write and a car's response to be met), plus what
chargers the gateway cannot command draw; and the control round never broke the booking invariant
(``SiteStatus.invariant_violations``). Minutes of operation per example run in milliseconds; the same supervisor
over loopback Modbus is in ``test_supervisor_rounds.py``, ``test_supervisor_limit_provider.py`` and
``test_supervisor_resync.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fake_chargers import TIMEOUT_S, FakeCharger, LinkMode
from support.virtual_time import VirtualClock, run_virtual

from drivers.profile import ProfileRegistry
from drivers.sim.vehicle import VehicleSpec
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.supervisor import ChargerHandle, Supervisor, UnitRatings
from gateway.site.config import ChargerConfig, parse_site
from gateway.site.settings import SiteSettings

REGISTRY = ProfileRegistry.shipped()
INSTALLATION_A = 100.0
ROTATIONS = ["L1L2L3", "L2L3L1", "L3L1L2"]
CAR_LAG_MAX_S = 5.0
LINK_LAG_MAX_S = 1.0
TICK_S = 1.0
BUSES = 2


@dataclass
class Site:
    clock: VirtualClock
    supervisor: Supervisor
    chargers: dict[str, FakeCharger]
    rotations: dict[str, tuple[int, ...]]
    limits: list[tuple[float, float]] = field(default_factory=list)
    """(time, network limit) of every change, the first at the start."""
    problems: list[str] = field(default_factory=list)

    def set_limit(self, amps: float) -> None:
        self.supervisor.apply(SetNetworkLimit(amps), "test")
        self.limits.append((self.clock.now, amps))

    def grace_s(self) -> float:
        """A lowered limit (or a charger that answers again at more than there is room for) must be met within: a
        poll round and the wait for the next step (a tick each), the writes of one bus in turn (each may take a
        timeout or a lag; twice, if a step was already under way), and the car's response."""
        per_bus = -(-len(self.chargers) // BUSES)
        return CAR_LAG_MAX_S + 2 * TICK_S + 2 * per_bus * max(TIMEOUT_S, LINK_LAG_MAX_S) + 1.0

    def check(self) -> None:
        now = self.clock.now
        grace = self.grace_s()
        in_force_then = [amps for t, amps in self.limits if t <= now - grace][-1:] or [self.limits[0][1]]
        allowed = max(in_force_then + [amps for t, amps in self.limits if now - grace < t <= now])
        load = [0.0, 0.0, 0.0]
        free = [0.0, 0.0, 0.0]
        for cid, charger in self.chargers.items():
            uncommanded = charger.mode is LinkMode.DOWN or now - charger.recovered_s < grace
            for own, amps in enumerate(charger.currents_a()):
                site_phase = self.rotations[cid][own]
                load[site_phase] += amps
                if uncommanded:
                    free[site_phase] += amps
        for phase in range(3):
            if load[phase] > max(allowed, free[phase]) + 1e-6:
                self.problems.append(f"t={now:.1f}: L{phase + 1} carries {load[phase]:.2f} A > {allowed:g} A "
                                     f"({free[phase]:.2f} A uncommanded)")
        violations = self.supervisor.status().invariant_violations
        if violations:
            self.problems.append(f"t={now:.1f}: {violations} control rounds broke the booking invariant")


def site_file(n: int, limit_a: float, comm_timeout_s: float) -> dict[str, Any]:
    return {"installation_limit_a": INSTALLATION_A, "network_limit_a": limit_a, "enabled": True,
            "control": {"tick_s": TICK_S},
            "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "phase_rotation": ROTATIONS[i % 3],
                          "comm_timeout_s": comm_timeout_s,
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": 1000 + i % BUSES, "unit": i + 1}}
                         for i in range(n)]}


async def start_site(clock: VirtualClock, data: dict[str, Any], failsafe: Sequence[bool]) -> Site:
    config, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    chargers = {c.id: FakeCharger(clock, comm_timeout_s=c.comm_timeout_s, has_failsafe=failsafe[i],
                                  lag_s=LINK_LAG_MAX_S) for i, c in enumerate(config.chargers)}

    def make_driver(charger: ChargerConfig) -> ChargerHandle:
        return ChargerHandle(chargers[charger.id], f"bus{int(charger.id[2:]) % BUSES}")

    def ratings_of(charger: ChargerConfig) -> UnitRatings:
        caps = chargers[charger.id].capabilities
        return UnitRatings(nameplate_a=caps.max_current_a, limit_a=caps.max_current_a, min_current_a=6.0,
                           resolution_a=1.0, has_failsafe=caps.has_failsafe)

    supervisor = Supervisor(SiteSettings(config, REGISTRY.nameplate_a), make_driver, ratings_of=ratings_of,
                            clock=clock, wall=lambda: 1.7e9 + clock())
    rotations = {c.id: c.site_phases for c in config.chargers}
    site = Site(clock, supervisor, chargers, rotations, [(clock.now, config.network_limit_a)])
    await supervisor.start()
    return site


# -- the property ----------------------------------------------------------------------------------------------------
Event = tuple[float, str, Any]

cars = st.builds(lambda limit, phases, lag, soc: VehicleSpec("car", onboard_limit_a=limit, phases=phases, lag_s=lag,
                                                             soc_start=soc, battery_kwh=40.0),
                 st.integers(6, 32), st.integers(1, 3), st.floats(0.5, CAR_LAG_MAX_S), st.floats(0.1, 0.9))


@st.composite
def runs(draw: st.DrawFn) -> tuple[int, float, list[bool], float, list[Event]]:
    n = draw(st.integers(1, 4))
    failsafe = [draw(st.booleans()) for _ in range(n)]
    comm_timeout = draw(st.sampled_from([3.0, 10.0, 30.0]))
    top = min(32 * n, int(INSTALLATION_A))  # the site file refuses more than the chargers can take
    limit = float(draw(st.integers(0, top)))
    end = 100.0
    events: list[Event] = []
    for i in range(n):
        t = float(draw(st.integers(0, 40)))
        while t < end:
            events.append((t, f"plug cp{i}", draw(cars)))
            t += draw(st.integers(10, 120))
            events.append((t, f"unplug cp{i}", None))
            t += draw(st.integers(2, 40))
    for _ in range(draw(st.integers(0, 6))):
        at = float(draw(st.integers(1, 140)))
        kind = draw(st.sampled_from(["limit", "link"]))
        if kind == "limit":
            events.append((at, "limit", float(draw(st.integers(0, top)))))
        else:
            cid = f"cp{draw(st.integers(0, n - 1))}"
            mode = draw(st.sampled_from([LinkMode.DOWN, LinkMode.LAG, LinkMode.NO_ACK]))
            events.append((at, f"mode {cid}", mode))
            events.append((at + draw(st.integers(1, 60)), f"mode {cid}", LinkMode.OK))
    events.sort(key=lambda e: e[0])
    return n, limit, failsafe, comm_timeout, events


async def play(clock: VirtualClock, n: int, limit: float, failsafe: list[bool], comm_timeout: float,
               events: list[Event]) -> list[str]:
    site = await start_site(clock, site_file(n, limit, comm_timeout), failsafe)
    start = clock.now
    try:
        await site.supervisor.wait_ready(5)
        pending = list(events)
        for tick in range(int(max([e[0] for e in events] + [0.0])) + 40):
            while pending and pending[0][0] <= tick:
                _, what, arg = pending.pop(0)
                if what == "limit":
                    site.set_limit(arg)
                elif what.startswith("plug"):
                    site.chargers[what.split()[1]].plug(arg)
                elif what.startswith("unplug"):
                    site.chargers[what.split()[1]].unplug()
                else:
                    site.chargers[what.split()[1]].set_mode(arg)
            await asyncio.sleep(start + tick - clock.now)
            site.check()
            for offset in (0.25, 0.5, 0.75):
                await asyncio.sleep(start + tick + offset - clock.now)
                site.check()
    finally:
        await site.supervisor.stop()
    return site.problems


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_the_supervisor_keeps_every_limit_with_links_that_fail_lag_and_lose_answers(
        run: tuple[int, float, list[bool], float, list[Event]]) -> None:
    clock = VirtualClock()
    problems = run_virtual(play(clock, *run), clock)
    assert not problems, "\n".join([*problems[:10], "", f"run: {run!r}"])


# -- single findings -------------------------------------------------------------------------------------------------
def test_an_increase_from_zero_is_sent_only_once_the_decreases_are_acknowledged() -> None:
    """The supervisor once split commands with ``(acked or inf) >= new``: a charger at 0 A counted as a decrease, so
    its increase went out together with the decrease that was to make room for it."""
    clock = VirtualClock()

    async def main() -> tuple[list[tuple[float, str, float]], list[tuple[float, str, float]]]:
        site = await start_site(clock, site_file(2, 48.0, 30.0), [True, True])
        a, b = site.chargers["cp0"], site.chargers["cp1"]  # on different buses
        try:
            await site.supervisor.wait_ready(5)
            a.set_mode(LinkMode.LAG)  # every exchange with a takes a second
            a.plug(VehicleSpec("a", lag_s=1.0))
            await asyncio.sleep(20)
            assert a.setpoint_a == 32 and b.setpoint_a == 0
            a.log.clear()
            b.plug(VehicleSpec("b", lag_s=1.0))
            await asyncio.sleep(20)
        finally:
            await site.supervisor.stop()
        return a.log, b.log

    a_log, b_log = run_virtual(main(), clock)
    decrease_acked = next(t for t, what, amps in a_log if what == "write acked" and amps < 32)
    increase_sent = next(t for t, what, amps in b_log if what == "write start" and amps > 0)
    assert increase_sent >= decrease_acked, (a_log, b_log)
