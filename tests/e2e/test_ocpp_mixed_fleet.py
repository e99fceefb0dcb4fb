"""A mixed fleet end to end: Modbus chargers on loopback TCP and OCPP chargers connected to the gateway's own
endpoint over real websockets, under one limit, led by the real supervisor.

The invariant is checked on the PHYSICAL currents of the simulated cars, sampled every 20 ms for the whole test
(``ocpp_follower_support.Monitor``), so a follower that the gateway believes to have come down but whose car has not
shows up as a violation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ocpp_followers import (
    REGISTRY,
    Gateway,
    Monitor,
    car,
    modbus_charger,
    ocpp_charger,
    pilots,
    sim_ocpp,
    site_file,
    start_gateway,
    until,
    watching,
)

from drivers.model import Iec61851State
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.ocpp_charger import SimOcppCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.read_model import Availability


@dataclass
class Fleet:
    gateway: Gateway
    modbus: list[SimCharger]
    ocpp: list[SimOcppCharger]
    monitor: Monitor

    @property
    def all(self) -> list[SimCharger | SimOcppCharger]:
        return [*self.modbus, *self.ocpp]


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    clock = ScaledClock(1.0)
    site = SimulatedSite(clock)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    modbus = site.add_chargers(line, REGISTRY.charger("powershare-sim"), range(1, 3))
    await site.start()
    assert line.server is not None
    chargers = [modbus_charger("mb1", line.server.port, 1), modbus_charger("mb2", line.server.port, 2),
                ocpp_charger("oc1", "CP-1"), ocpp_charger("oc2", "CP-2")]
    sims: list[SimOcppCharger] = []

    async def connect_sims(gateway: Gateway) -> None:
        sims.extend(sim_ocpp(cp, gateway.url, clock) for cp in ("CP-1", "CP-2"))
        for sim in sims:
            await sim.start()
        await until(lambda: all(s.connected for s in sims))

    gateway = await start_gateway(site_file(chargers, 48), tmp_path, before_supervisor=connect_sims)
    readers = [*(c.phase_currents_a for c in modbus), *(s.phase_currents_a for s in sims)]
    monitor = Monitor(readers, 48, clock)
    try:
        async with watching(monitor):
            yield Fleet(gateway, modbus, sims, monitor)
    finally:
        await gateway.stop()
        for sim in sims:
            await sim.stop()
        await site.stop()


async def test_modbus_and_ocpp_chargers_share_one_limit(fleet: Fleet) -> None:
    for charger, name in zip((fleet.modbus[0], *fleet.ocpp), "abc", strict=True):
        charger.plug(car(name))
    await until(lambda: pilots(fleet.all) == [16, 0, 16, 16])
    fleet.modbus[1].plug(car("d"))
    await until(lambda: pilots(fleet.all) == [12, 12, 12, 12])
    await until(lambda: all(abs(s.phase_currents_a()[0] - 12) < 0.1 for s in fleet.ocpp))

    fleet.ocpp[0].unplug()  # current moves from an OCPP follower to the others
    await until(lambda: pilots(fleet.all) == [16, 16, 0, 16], show=lambda: pilots(fleet.all))

    fleet.monitor.set_limit(30)
    fleet.gateway.supervisor.apply(SetNetworkLimit(30), "test")
    await until(lambda: pilots(fleet.all) == [10, 10, 0, 10], timeout_s=3)
    # The OCPP follower's reading catches up with its next MeterValues.
    await until(lambda: fleet.gateway.supervisor.status().units[3].current_a == (10.0, 10.0, 10.0))
    status = fleet.gateway.supervisor.status()
    assert [u.state for u in status.units] == [Iec61851State.C, Iec61851State.C, Iec61851State.A, Iec61851State.C]
    oc2 = status.units[3]
    assert oc2.session_energy_wh > 0 and oc2.power_w == pytest.approx(10 * 230 * 3)


async def test_current_moves_from_a_modbus_charger_to_an_ocpp_follower_only_after_it_came_down(
        fleet: Fleet) -> None:
    fleet.modbus[0].plug(car("a"))
    await until(lambda: pilots(fleet.all)[0] == 32)
    await until(lambda: fleet.modbus[0].phase_currents_a()[0] == 32)
    fleet.ocpp[0].plug(car("b"))  # 48 A: 32 must come down to 24 before the newcomer may take 24
    await until(lambda: pilots(fleet.all) == [24, 0, 24, 0])
    fleet.ocpp[1].plug(car("c", limit=16, phases=1))  # a 1-phase car on the second OCPP follower
    await until(lambda: pilots(fleet.all) == [16, 0, 16, 16])


async def test_an_ocpp_follower_that_disconnects_is_booked_at_its_maximum_and_rejoins(fleet: Fleet) -> None:
    fleet.modbus[0].plug(car("a"))
    fleet.ocpp[0].plug(car("b"))
    await until(lambda: pilots(fleet.all) == [24, 0, 24, 0])
    await fleet.ocpp[0].stop()  # its network goes; the charger keeps charging on its installed profile
    await until(lambda: fleet.gateway.supervisor.status().units[2].availability is Availability.UNAVAILABLE)
    assert fleet.gateway.supervisor.status().units[2].unavailable_reason == "connection lost"
    # No fail-safe: booked at its 32 A maximum while away, so the Modbus car gets what is left.
    await until(lambda: pilots(fleet.all)[0] == 16)
    assert fleet.ocpp[0].pilot_a() == 24 and fleet.ocpp[0].phase_currents_a()[0] == 24
    fleet.ocpp[1].plug(car("c"))  # the newcomer shares what oc1's 32 A booking leaves
    await until(lambda: pilots(fleet.all) == [8, 0, 24, 8])

    await fleet.ocpp[0].start()  # it reconnects (no BootNotification: it did not reboot)
    await until(lambda: fleet.gateway.supervisor.status().units[2].availability is Availability.AVAILABLE)
    await until(lambda: pilots(fleet.all) == [16, 0, 16, 16])
    assert fleet.ocpp[0].boots == 1 and fleet.ocpp[0].connections == 2
