"""Local controller mode end to end: OCPP followers behind the gateway, the gateway connected upstream to a central
system as one charge point (``powershare run``'s assembly: ``GatewayApp`` with the OCPP client face).

The followers' sessions reach the central system as the gateway's own connectors, with the follower's badge as the
idTag; the central system's limits reach the followers only through the controller (the followers only ever hold
the gateway's own profile); and nothing is lost while the central system is away. Physical currents are monitored
throughout, as in the mixed-fleet test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.ocpp_followers import (
    PASSWORD,
    REGISTRY,
    Monitor,
    car,
    modbus_charger,
    ocpp_charger,
    pilots,
    sim_ocpp,
    site_file,
    until,
    watching,
)

from drivers.ocpp.profiles import PROFILE_ID_BASE
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.ocpp_charger import LIFETIME_ENERGY_START_WH, SimOcppCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.faces.ocpp.client import OcppClient
from gateway.faces.ocpp.face import ocpp_face
from gateway.runtime.app import GatewayApp
from gateway.sim.csms import CentralSystem
from gateway.site.config import parse_site

GATEWAY_ID = "GW-0001"


@dataclass
class Relay:
    app: GatewayApp
    csms: CentralSystem
    modbus: SimCharger
    sims: list[SimOcppCharger]
    monitor: Monitor

    @property
    def client(self) -> OcppClient:
        [client] = [face for face in self.app.faces if isinstance(face, OcppClient)]
        return client

    @property
    def all(self) -> list[SimCharger | SimOcppCharger]:
        return [self.modbus, *self.sims]

    def received(self, action: str, connector: int | None = None) -> list[dict[str, Any]]:
        """What the gateway sent the central system (on ``connector``, if given), in order."""
        return [r.payload for r in self.csms.received if r.action == action and r.charge_point == GATEWAY_ID
                and (connector is None or r.payload.get("connectorId") == connector)]

    async def wait(self, action: str, connector: int | None, count: int = 1) -> dict[str, Any]:
        await until(lambda: len(self.received(action, connector)) >= count, timeout_s=8,
                    show=lambda: [(r.action, r.payload) for r in self.csms.received[-5:]])
        return self.received(action, connector)[count - 1]


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    clock = ScaledClock(1.0)
    site = SimulatedSite(clock)
    line = site.add_line(TcpListen("127.0.0.1", 0))
    [modbus] = site.add_chargers(line, REGISTRY.charger("powershare-sim"), [1])
    await site.start()
    csms = CentralSystem(port=0)
    await csms.start()
    assert line.server is not None
    (tmp_path / "cp.key").write_text(PASSWORD + "\n")
    data = site_file([modbus_charger("mb1", line.server.port, 1), ocpp_charger("oc1", "CP-1"),
                      ocpp_charger("oc2", "CP-2")], 48, ocpp={
        "url": f"ws://127.0.0.1:{csms.port}", "charge_point_id": GATEWAY_ID, "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3, "response_timeout_s": 5,
        "meter_values": {"sample_interval_s": 1, "sampled_data": ["Energy.Active.Import.Register", "Current.Import"]}})
    config, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    assert config.ocpp is not None
    app = GatewayApp.build(config, REGISTRY, state_dir=tmp_path, extra_faces=[ocpp_face(config.ocpp, tmp_path)],
                           base_dir=tmp_path)
    await app.start()
    url = f"ws://127.0.0.1:{app.wiring.ocpp.endpoint.port}"
    sims = [sim_ocpp(cp, url, clock, id_tag=f"BADGE-{n}") for n, cp in ((1, "CP-1"), (2, "CP-2"))]
    for sim in sims:
        await sim.start()
    monitor = Monitor([modbus.phase_currents_a, *(s.phase_currents_a for s in sims)], 48, clock)
    relay = Relay(app, csms, modbus, sims, monitor)
    try:
        await until(lambda: all(len(s.store.installed) == 2 for s in sims) and relay.client.booted)
        async with watching(monitor):
            yield relay
    finally:
        for sim in sims:
            await sim.stop()
        await app.stop()
        await csms.stop()
        await site.stop()


async def test_a_follower_s_session_is_relayed_as_the_gateway_s_connector_with_its_badge(relay: Relay) -> None:
    relay.sims[0].plug(car("a"))
    start = await relay.wait("StartTransaction", 2)
    assert start["idTag"] == "BADGE-1" and start["meterStart"] == LIFETIME_ENERGY_START_WH
    await until(lambda: any(r.get("status") == "Charging" for r in relay.received("StatusNotification", 2)))
    sample = await relay.wait("MeterValues", 2)
    values = {(v.get("measurand"), v.get("phase")): float(v["value"]) for v in sample["meterValue"][0]["sampledValue"]}
    assert values[("Current.Import", "L1")] == pytest.approx(relay.sims[0].phase_currents_a()[0], abs=0.1)
    relay.sims[0].unplug()
    stop = await relay.wait("StopTransaction", None)
    station = relay.app.wiring.ocpp.endpoint.stations["CP-1"]
    assert stop["meterStop"] == station.connectors[1].energy_wh == int(relay.sims[0].connectors[1].energy_wh())
    assert stop["reason"] == "EVDisconnected" and stop["idTag"] == "BADGE-1"
    assert stop["transactionId"] == sample["transactionId"]


async def test_the_central_system_reaches_followers_only_through_the_controller(relay: Relay) -> None:
    for charger, name in zip(relay.all, "abc", strict=True):
        charger.plug(car(name))
    await until(lambda: pilots(relay.all) == [16, 16, 16])
    relay.monitor.set_limit(30)
    answer = await relay.csms.call(GATEWAY_ID, "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "startSchedule": "2024-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 30}]}}})
    assert answer == {"status": "Accepted"}
    await until(lambda: pilots(relay.all) == [10, 10, 10], timeout_s=3)
    answer = await relay.csms.call(GATEWAY_ID, "SetChargingProfile", {"connectorId": 3, "csChargingProfiles": {
        "chargingProfileId": 8, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]}}})
    assert answer == {"status": "Accepted"}
    await until(lambda: pilots(relay.all) == [12, 12, 6], timeout_s=3)
    for n, sim in enumerate(relay.sims, start=1):  # the followers hold the gateway's own profiles, nothing else
        assert sorted((p.connector_id, p.purpose, p.profile["charging_profile_id"]) for p in sim.store.installed) == [
            (0, "TxDefaultProfile", PROFILE_ID_BASE), (1, "TxDefaultProfile", PROFILE_ID_BASE + 1)], n


def stamp(sample: dict[str, Any]) -> float:
    return datetime.fromisoformat(sample["meterValue"][0]["timestamp"]).timestamp()


async def test_nothing_is_lost_while_the_central_system_is_away(relay: Relay) -> None:
    port = relay.csms.port
    await relay.csms.stop()
    await until(lambda: not relay.client.booted)
    relay.sims[0].plug(car("a"))
    await asyncio.sleep(3)
    relay.sims[0].unplug()
    relay.sims[1].plug(car("b"))
    await until(lambda: relay.sims[1].pilot_a() > 0)  # sharing goes on without the central system
    await asyncio.sleep(1.5)
    queued = len(relay.client.station.outbox)
    assert queued >= 5

    relay.csms.requested_port = port
    await relay.csms.start()
    await relay.wait("MeterValues", 3)
    await until(lambda: len(relay.client.station.outbox) <= 1)  # at most a sample taken since
    first_start, first_stop = relay.received("StartTransaction", 2)[0], relay.received("StopTransaction")[0]
    second_start = relay.received("StartTransaction", 3)[0]
    assert (first_start["idTag"], second_start["idTag"]) == ("BADGE-1", "BADGE-2")
    actions = [r.action for r in relay.csms.received if r.action in ("StartTransaction", "StopTransaction")]
    assert actions == ["StartTransaction", "StopTransaction", "StartTransaction"]  # in the order they happened
    samples = relay.received("MeterValues", 2)
    [transaction_id] = {s["transactionId"] for s in samples}
    assert first_stop["transactionId"] == transaction_id and transaction_id > 0
    times = sorted(stamp(s) for s in samples)
    assert len(times) >= 2 and all(b - a <= 1.5 for a, b in itertools.pairwise(times))  # no gap
    assert len({(s["connectorId"], stamp(s)) for s in relay.received("MeterValues")}) == len(
        relay.received("MeterValues")), "nothing delivered twice"
