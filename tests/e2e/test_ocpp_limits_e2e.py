"""Smart charging end to end: profiles sent over the wire change the live allocation at once, and the allocation
never exceeds the composite schedule at the current instant.

Three simulated chargers over loopback Modbus TCP, each with a car; the central system sends a
ChargePointMaxProfile and a TxDefaultProfile whose periods change every second, at instants that do not
fall on the control loop's tick (1 s), so only the supervisor's wake-up at ``next_change`` can meet them. A monitor
samples every 20 ms: each charger's commanded setpoint must stay within its connector limit and the sum within
the site limit, both from ``limits_at`` at that instant; only a lowered limit gets ``GRACE_S`` for the write to
reach the charger.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.ocpp_peers import python_peer
from support.ocpp_rig import CP_ID, Gateway, car, gateway, until

from drivers.aio import cancel_and_wait
from gateway.faces.ocpp.payload import format_time
from gateway.faces.ocpp.smart_charging import limits_at

GRACE_S = 0.3
"""A lowered limit reaches the charger within one Modbus write after the control step at that instant."""


@dataclass
class LimitMonitor:
    gw: Gateway
    violations: list[str] = field(default_factory=list)
    samples: int = 0
    lowered_at: float = -math.inf
    last: tuple[Any, ...] = ()

    async def run(self) -> None:
        station = self.gw.ocpp.station
        while True:
            now = time.time()
            limits = limits_at(station.store, station.limits.electrical, now)
            key = (limits.site_a, *limits.connectors_a)
            if self.last and any(_lower(new, old) for new, old in zip(key, self.last, strict=True)):
                self.lowered_at = now
            self.last = key
            setpoints = self.gw.setpoints()
            self.samples += 1
            if now - self.lowered_at > GRACE_S:
                for n, (setpoint, limit) in enumerate(zip(setpoints, limits.connectors_a, strict=True), start=1):
                    if limit is not None and setpoint > limit + 1e-6:
                        self.violations.append(f"t={now:.3f} connector {n}: {setpoint} A > {limit} A")
                if limits.site_a is not None and sum(setpoints) > limits.site_a + 1e-6:
                    self.violations.append(f"t={now:.3f} site: {sum(setpoints)} A > {limits.site_a} A")
            await asyncio.sleep(0.02)


def _lower(new: float | None, old: float | None) -> bool:
    return (new if new is not None else math.inf) < (old if old is not None else math.inf)


def absolute(pid: int, purpose: str, start: float, periods: list[tuple[int, float]], stack: int = 0,
             duration: int | None = None) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": "A", "startSchedule": format_time(start),
                                "chargingSchedulePeriod": [{"startPeriod": s, "limit": a} for s, a in periods]}
    if duration is not None:
        schedule["duration"] = duration
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute", "chargingSchedule": schedule}


async def test_the_allocation_follows_the_composite_schedule_at_every_instant(tmp_path: Path) -> None:
    async with python_peer(CP_ID) as peer, \
            gateway(tmp_path, {"url": peer.url()}, n=3, limit=60, control={"tick_s": 1.0}) as gw:
        await until(lambda: gw.ocpp.booted)
        for charger, name in zip(gw.chargers, "abc", strict=True):
            charger.plug(car(name))
        await until(lambda: gw.setpoints() == [20, 20, 20])
        monitor = LimitMonitor(gw)
        watch = asyncio.create_task(monitor.run())
        try:
            start = math.floor(time.time()) + 1.45  # between two ticks
            site = absolute(1, "ChargePointMaxProfile", start, [(0, 45), (1, 19.5), (2, 36), (3, 12)], duration=4)
            default = absolute(2, "TxDefaultProfile", start, [(0, 10), (1, 6.5), (2, 16)], duration=3)
            for connector, profile in ((0, site), (2, default)):
                answer = await peer.call("SetChargingProfile", {"connectorId": connector,
                                                                "csChargingProfiles": profile})
                assert answer["status"] == "Accepted"
            composite = await peer.call("GetCompositeSchedule", {"connectorId": 0, "duration": 10})
            assert composite["status"] == "Accepted"
            await until(lambda: gw.setpoints()[1] <= 10, timeout_s=2)
            await asyncio.sleep(max(0.0, start + 1.2 - time.time()))
            assert sum(gw.setpoints()) <= 19.5 and gw.setpoints()[1] <= 6.5, "the period from 1 s is in force"
            await asyncio.sleep(max(0.0, start + 3.2 - time.time()))
            assert sum(gw.setpoints()) <= 12
            await asyncio.sleep(max(0.0, start + 4.3 - time.time()))
            await until(lambda: sum(gw.setpoints()) > 12, timeout_s=3)  # both profiles ended: the cap is lifted
        finally:
            await cancel_and_wait(watch)
    assert monitor.samples > 100
    assert not monitor.violations, monitor.violations[:5]
