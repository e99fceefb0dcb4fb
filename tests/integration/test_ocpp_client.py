"""The OCPP client over real websockets on loopback, against both central systems (the project's own and ocpp-rpc
in strict mode), with the real supervisor and simulated chargers over loopback Modbus TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.ocpp_peers import NodePeer, Peer, PeerCallFailed, any_peer, node_peer
from support.ocpp_rig import CP_ID, car, gateway, until

from gateway.runtime.read_model import Availability

PEERS = ["csms", "node"]


def status_of(peer: Peer, connector: int) -> str | None:
    found = [p["status"] for p in peer.calls("StatusNotification") if p["connectorId"] == connector]
    return found[-1] if found else None


async def wait_status(peer: Peer, connector: int, status: str) -> None:
    await until(lambda: status_of(peer, connector) == status)


def tx_profile(pid: int, limit: float, tx_id: int | None = None, stack: int = 0) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}
    if tx_id is not None:
        profile["transactionId"] = tx_id
    return profile


def site_cap(pid: int, limit: float, stack: int = 0) -> dict[str, Any]:
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": "2020-01-01T00:00:00Z",
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}


@pytest.fixture(params=PEERS)
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    async with any_peer(request.param, CP_ID, interval=300) as p:
        yield p


async def started(tmp_path: Path, peer: Peer, **ocpp: Any) -> Any:
    return gateway(tmp_path, {"url": peer.url(), **ocpp})


async def test_boot_accepted_then_status_of_every_connector_and_heartbeats(tmp_path: Path, peer: Peer) -> None:
    await peer.set_boot("Accepted", 1)
    async with await started(tmp_path, peer) as gw:
        boot = await peer.wait_for("BootNotification")
        assert boot["chargePointVendor"] == "powershare" and boot["chargePointModel"] == "gateway"
        for connector in (0, 1, 2):
            await peer.wait_for("StatusNotification", lambda p, c=connector: p["connectorId"] == c)
        assert status_of(peer, 0) == status_of(peer, 1) == "Available"
        await peer.wait_for("Heartbeat")  # the interval of BootNotification.conf (1 s) is used
        assert gw.ocpp.booted


async def test_pending_registration_sends_only_boot_until_accepted(tmp_path: Path, peer: Peer) -> None:
    await peer.set_boot("Pending", 1)
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("BootNotification")
        answer = await peer.call("GetConfiguration", {"key": ["NumberOfConnectors"]})  # answered while Pending
        assert answer["configurationKey"] == [{"key": "NumberOfConnectors", "readonly": True, "value": "2"}]
        gw.chargers[0].plug(car("a"))
        await peer.wait_for("BootNotification", count=2)
        assert not peer.calls("StatusNotification") and not peer.calls("StartTransaction")
        await peer.set_boot("Accepted", 300)
        await peer.wait_for("BootNotification", count=3)
        start = await peer.wait_for("StartTransaction")
        assert start["connectorId"] == 1 and start["idTag"] == "POWERSHARE"


async def test_rejected_boot_disconnects_and_retries_after_the_interval(tmp_path: Path, peer: Peer) -> None:
    await peer.set_boot("Rejected", 1)
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("BootNotification")
        await asyncio.sleep(0.5)
        assert len(peer.calls("BootNotification")) == 1, "nothing is sent before the interval has passed"
        assert not gw.ocpp.booted
        await peer.set_boot("Accepted", 300)
        await peer.wait_for("BootNotification", count=2)
        await peer.wait_for("StatusNotification")
        assert not [c for c in ("Heartbeat", "StartTransaction") if peer.calls(c)]


async def test_a_whole_transaction_with_meter_values(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer, meter_values={"sample_interval_s": 1}) as gw:
        await peer.wait_for("StatusNotification")
        gw.chargers[0].plug(car("a", limit=16))
        start = await peer.wait_for("StartTransaction")
        await wait_status(peer, 1, "Charging")
        sample = await peer.wait_for("MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0]["context"]
                                     == "Sample.Periodic" and any(v.get("measurand") == "Current.Import"
                                                                  and float(v["value"]) > 10
                                                                  for v in p["meterValue"][0]["sampledValue"]))
        values = {(v["measurand"], v.get("phase")): float(v["value"]) for v in sample["meterValue"][0]["sampledValue"]}
        assert set(values) == {("Energy.Active.Import.Register", None), ("Power.Active.Import", None),
                               ("Current.Import", "L1"), ("Current.Import", "L2"), ("Current.Import", "L3"),
                               ("Current.Offered", None)}
        assert values[("Current.Offered", None)] == 32  # the car takes 16 A of the 32 A offered
        assert 15 <= values[("Current.Import", "L1")] <= 17
        assert values[("Energy.Active.Import.Register", None)] >= start["meterStart"]
        gw.chargers[0].unplug()
        stop = await peer.wait_for("StopTransaction")
        await wait_status(peer, 1, "Available")
    tx_id = 1
    assert sample["transactionId"] == tx_id and stop["transactionId"] == tx_id
    assert stop["reason"] == "EVDisconnected" and stop["meterStop"] >= start["meterStart"]
    statuses = [p["status"] for p in peer.calls("StatusNotification") if p["connectorId"] == 1]
    assert statuses[:2] == ["Available", "Preparing"] or statuses[:2] == ["Available", "SuspendedEV"] \
        or statuses[:2] == ["Available", "SuspendedEVSE"]
    assert "Charging" in statuses and statuses[-1] == "Available"


async def test_smart_charging_through_the_wire(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        for charger, name in zip(gw.chargers, "ab", strict=True):
            charger.plug(car(name))
        await peer.wait_for("StartTransaction", count=2)
        await until(lambda: gw.setpoints() == [24, 24])

        async def set_profile(connector: int, profile: dict[str, Any]) -> str:
            answer = await peer.call("SetChargingProfile", {"connectorId": connector, "csChargingProfiles": profile})
            return str(answer["status"])

        assert await set_profile(1, site_cap(1, 20)) == "Rejected"  # S4: ChargePointMax only on connector 0
        assert await set_profile(0, tx_profile(2, 10)) == "Rejected"  # S3: TxProfile not on connector 0
        assert await set_profile(1, tx_profile(3, 10, tx_id=999)) == "Rejected"  # S2: not the running transaction
        assert await set_profile(0, site_cap(1, 20)) == "Accepted"
        await until(lambda: gw.setpoints() == [10, 10])
        assert await set_profile(1, tx_profile(4, 6, tx_id=1)) == "Accepted"
        await until(lambda: gw.setpoints() == [6, 14])

        composite = await peer.call("GetCompositeSchedule", {"connectorId": 1, "duration": 600,
                                                             "chargingRateUnit": "A"})
        assert composite["status"] == "Accepted"
        assert composite["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 6}]
        composite = await peer.call("GetCompositeSchedule", {"connectorId": 0, "duration": 600})
        assert composite["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 20}]
        watts = await peer.call("GetCompositeSchedule", {"connectorId": 2, "duration": 60, "chargingRateUnit": "W"})
        assert watts["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 13800}]
        rejected = await peer.call("GetCompositeSchedule", {"connectorId": 7, "duration": 60})
        assert rejected["status"] == "Rejected"

        assert (await peer.call("ClearChargingProfile", {"id": 4}))["status"] == "Accepted"
        assert (await peer.call("ClearChargingProfile", {"id": 4}))["status"] == "Unknown"
        await until(lambda: gw.setpoints() == [10, 10])
        assert (await peer.call("ClearChargingProfile", {}))["status"] == "Accepted"
        await until(lambda: gw.setpoints() == [24, 24])
        with pytest.raises(PeerCallFailed) as failure:
            await set_profile(9, site_cap(5, 20))
        assert failure.value.code == "PropertyConstraintViolation"  # S9, errata §3.38
        assert gw.ocpp.booted


async def test_profiles_survive_a_gateway_restart(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        assert (await peer.call("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": site_cap(1, 8)})
                )["status"] == "Accepted"
        await gw.stop()
        gw.chargers[0].plug(car("a"))
        await gw.start()
        await until(lambda: gw.setpoints()[0] == 8)
        assert gw.supervisor is not None and gw.supervisor.status().effective_limit_a == (8, 8, 8)


async def test_central_system_lost_mid_session_nothing_lost_nothing_duplicated(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer, meter_values={"sample_interval_s": 1,
                                                           "clock_aligned_interval_s": 0}) as gw:
        await peer.wait_for("StatusNotification")
        gw.chargers[0].plug(car("a"))
        await peer.wait_for("StartTransaction")
        await peer.go_offline()
        await until(lambda: not gw.ocpp.booted)
        gw.chargers[1].plug(car("b"))  # a transaction that starts while offline: its id is not known yet
        await until(lambda: gw.setpoints() == [24, 24])  # sharing goes on without the central system
        await until(lambda: any(m.action == "MeterValues" and m.payload["connectorId"] == 2
                                for m in gw.ocpp.station.outbox.pending()))
        gw.chargers[0].unplug()
        gw.chargers[1].unplug()
        await until(lambda: len(gw.ocpp.station.outbox) >= 5)
        queued = len(gw.ocpp.station.outbox)
        await peer.go_online()
        await peer.wait_for("StopTransaction", count=2)
        await until(lambda: len(gw.ocpp.station.outbox) == 0)
        await asyncio.sleep(0.3)
    starts, stops = peer.calls("StartTransaction"), peer.calls("StopTransaction")
    assert [s["connectorId"] for s in starts] == [1, 2]
    assert sorted(s["transactionId"] for s in stops) == [1, 2]
    samples = peer.calls("MeterValues")
    stamps = [(m["connectorId"], m["meterValue"][0]["timestamp"]) for m in samples]
    assert len(stamps) == len(set(stamps)), "no message is delivered twice"
    offline_b = [m for m in samples if m["connectorId"] == 2]
    assert offline_b and all(m["transactionId"] == 2 for m in offline_b), "ids patched once Start.conf came"
    assert queued >= 5


async def test_gateway_restart_with_queued_messages(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer, meter_values={"sample_interval_s": 1}) as gw:
        await peer.wait_for("StatusNotification")
        await peer.go_offline()
        await until(lambda: not gw.ocpp.booted)
        gw.chargers[0].plug(car("a"))
        await until(lambda: len(gw.ocpp.station.outbox) >= 2)
        await gw.stop()
        queued = [m.action for m in _pending(tmp_path)]
        gw.chargers[0].unplug()
        await gw.start()
        await until(lambda: len(gw.ocpp.station.outbox) > len(queued))  # the StopTransaction, after the restart
        await peer.go_online()
        stop = await peer.wait_for("StopTransaction")
        await until(lambda: len(gw.ocpp.station.outbox) == 0)
    assert queued[0] == "StartTransaction"
    assert len(peer.calls("StartTransaction")) == 1 and len(peer.calls("StopTransaction")) == 1
    assert stop["transactionId"] == 1 and all(m["transactionId"] == 1 for m in peer.calls("MeterValues"))


def _pending(state: Path) -> list[Any]:
    from gateway.faces.ocpp.ledger import Ledger
    from gateway.faces.ocpp.outbox import Outbox
    with Ledger(state / "ocpp" / "charge-point.db") as ledger:
        return Outbox(ledger).pending()


async def test_remote_start_and_stop(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer, authorization={"mode": "remote"}) as gw:
        await peer.wait_for("StatusNotification")
        gw.chargers[0].plug(car("a"))
        await wait_status(peer, 1, "Preparing")
        await asyncio.sleep(0.5)
        assert gw.setpoints()[0] == 0 and not peer.calls("StartTransaction"), "no current before authorisation"
        profile = tx_profile(7, 12)
        answer = await peer.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "DRIVER-1",
                                                            "chargingProfile": profile})
        assert answer["status"] == "Accepted"
        start = await peer.wait_for("StartTransaction")
        assert start["idTag"] == "DRIVER-1"
        await until(lambda: gw.setpoints()[0] == 12)  # the RemoteStart profile applies to the transaction
        await wait_status(peer, 1, "Charging")
        assert (await peer.call("RemoteStopTransaction", {"transactionId": 42}))["status"] == "Rejected"
        assert (await peer.call("RemoteStopTransaction", {"transactionId": 1}))["status"] == "Accepted"
        stop = await peer.wait_for("StopTransaction")
        assert stop["reason"] == "Remote" and stop["transactionId"] == 1
        await wait_status(peer, 1, "Finishing")
        await until(lambda: gw.setpoints()[0] == 0)
        gw.chargers[0].unplug()
        await wait_status(peer, 1, "Available")
        bad = await peer.call("RemoteStartTransaction", {"idTag": "X", "chargingProfile": site_cap(8, 10)})
        assert bad["status"] == "Rejected"  # TC_060: a RemoteStart profile must be a TxProfile


async def test_change_availability_per_connector_and_for_the_site(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        answer = await peer.call("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
        assert answer["status"] == "Accepted"
        await wait_status(peer, 2, "Unavailable")
        gw.chargers[1].plug(car("b"))
        gw.chargers[0].plug(car("a"))
        await peer.wait_for("StartTransaction")
        await until(lambda: gw.setpoints() == [32, 0])
        assert [s["connectorId"] for s in peer.calls("StartTransaction")] == [1]
        busy = await peer.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        assert busy["status"] == "Scheduled"
        assert (await peer.call("ChangeAvailability", {"connectorId": 2, "type": "Operative"}))["status"] == "Accepted"
        await peer.wait_for("StartTransaction", count=2)
        await until(lambda: gw.setpoints() == [24, 24])
        gw.chargers[0].unplug()
        await wait_status(peer, 1, "Unavailable")  # the scheduled change, once the transaction ended
        assert (await peer.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}))["status"] == \
            "Scheduled"
        await wait_status(peer, 0, "Unavailable")
        assert (await peer.call("ChangeAvailability", {"connectorId": 5, "type": "Operative"}))["status"] == \
            "Rejected"
        gw.chargers[1].unplug()
        await wait_status(peer, 2, "Unavailable")
        await gw.stop()
        await gw.start()  # the site's availability persists across a restart
        gw.chargers[0].plug(car("c"))
        await asyncio.sleep(1.0)
        assert gw.setpoints() == [0, 0] and len(peer.calls("StartTransaction")) == 2
        assert gw.ocpp.station.reports[0][0].status == "Unavailable"


async def test_reset_stops_transactions_and_boots_again(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        gw.chargers[0].plug(car("a"))
        await peer.wait_for("StartTransaction")
        assert (await peer.call("Reset", {"type": "Soft"}))["status"] == "Accepted"
        stop = await peer.wait_for("StopTransaction")
        assert stop["reason"] == "SoftReset" and stop["transactionId"] == 1
        await peer.wait_for("BootNotification", count=2)
        await peer.wait_for("StartTransaction", count=2)  # the car is still plugged in: a new transaction
        assert gw.setpoints()[0] > 0


async def test_trigger_message(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification", lambda p: p["connectorId"] == 2)
        gw.chargers[1].plug(car("b"))
        await peer.wait_for("StartTransaction")
        before = len(peer.calls("StatusNotification"))
        for message in ("StatusNotification", "Heartbeat", "MeterValues", "BootNotification"):
            answer = await peer.call("TriggerMessage", {"requestedMessage": message, "connectorId": 2})
            assert answer["status"] == "Accepted"
            await peer.wait_for(message, count=2 if message == "BootNotification" else 1)
        assert len(peer.calls("StatusNotification")) > before
        triggered = peer.calls("MeterValues")[-1]
        assert triggered["connectorId"] == 2 and triggered["transactionId"] == 1
        assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        answer = await peer.call("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
        assert answer["status"] == "NotImplemented"
        answer = await peer.call("TriggerMessage", {"requestedMessage": "Heartbeat", "connectorId": 9})
        assert answer["status"] == "Rejected"


async def test_configuration_keys_over_the_wire_persist(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        answer = await peer.call("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
        assert answer["configurationKey"] == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        assert answer["unknownKey"] == ["NoSuchKey"]
        assert len((await peer.call("GetConfiguration", {}))["configurationKey"]) == 33
        change = await peer.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "5"})
        assert change["status"] == "Accepted"
        assert (await peer.call("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "9"}))["status"] == \
            "Rejected"
        assert (await peer.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": "0" * 20}))["status"] \
            == "NotSupported"
        await gw.stop()
        await gw.start()
        await until(lambda: gw.ocpp.booted)
        answer = await peer.call("GetConfiguration", {"key": ["MeterValueSampleInterval"]})
        assert answer["configurationKey"][0]["value"] == "5"


async def test_unsupported_and_unknown_calls_get_a_callerror(tmp_path: Path, peer: Peer) -> None:
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification")
        with pytest.raises(PeerCallFailed) as failure:
            await peer.call("ReserveNow", {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "A",
                                           "reservationId": 1})
        assert failure.value.code == "NotSupported"
        assert (await peer.call("UnlockConnector", {"connectorId": 1}))["status"] == "NotSupported"
        assert (await peer.call("DataTransfer", {"vendorId": "x"}))["status"] == "UnknownVendorId"
        assert (await peer.call("ClearCache", {}))["status"] == "Accepted"
        assert gw.ocpp.booted


@pytest.fixture
async def node() -> AsyncIterator[NodePeer]:
    async with node_peer() as p:
        yield p


async def test_malformed_frames_are_answered_or_dropped_never_fatal(tmp_path: Path, node: NodePeer) -> None:
    async with gateway(tmp_path, {"url": node.url()}) as gw:
        await node.wait_for("StatusNotification")
        frames = {
            "m1": '[2,"m1","Reset",{"type":"Bogus"}]',
            "m2": '[2,"m2","FooBar",{}]',
            "m3": '[2,"m3","Reset"]',
            "m4": '[2,"m4","SetChargingProfile",{"connectorId":0,"csChargingProfiles":{"chargingProfileId":1,'
                  '"stackLevel":0,"chargingProfilePurpose":"ChargePointMaxProfile","chargingProfileKind":"Absolute",'
                  '"chargingSchedule":{"chargingRateUnit":"A","startSchedule":"2020-01-01T00:00:00Z",'
                  '"chargingSchedulePeriod":[{"startPeriod":0,"limit":15.94}]}}}]',
            "m5": '[2,"m5","GetCompositeSchedule",{"connectorId":1}]',
            "m6": '[2,"m6","ChangeConfiguration",{"key":"HeartbeatInterval","value":5}]',
            "m7": '[2,"m7","ClearChargingProfile",{"extra":1}]',
            "m8": '[2,"m8","GetConfiguration",[]]',
        }
        await node.raw("this is not json")
        await node.raw('{"not": "a frame"}')
        for frame in frames.values():
            await node.raw(frame)
        errors = {}
        for unique_id in frames:
            event = await node.event(lambda e, u=unique_id: e["event"] == "raw" and f'"{u}"' in e["message"])
            errors[unique_id] = event["message"]
        codes = {u: m.split(",")[2].strip('"') for u, m in errors.items()}
        assert codes == {"m1": "PropertyConstraintViolation", "m2": "NotImplemented", "m3": "ProtocolError",
                         "m4": "PropertyConstraintViolation", "m5": "OccurenceConstraintViolation",
                         "m6": "TypeConstraintViolation", "m7": "FormationViolation", "m8": "FormationViolation"}
        assert all(m.startswith("[4,") for m in errors.values())
        answer = await node.call("GetConfiguration", {"key": ["NumberOfConnectors"]})
        assert answer["configurationKey"][0]["value"] == "2" and gw.ocpp.booted
        assert not gw.ocpp.station.store.profiles
        assert not [e for e in node.invalid() if not e.get("outbound")], "every message we sent passed strict mode"


async def test_everything_we_send_passes_ocpp_rpc_strict_validation(tmp_path: Path, node: NodePeer) -> None:
    ocpp = {"url": node.url(), "meter_values": {"sample_interval_s": 1, "clock_aligned_interval_s": 1,
                                                "sampled_data": ["Energy.Active.Import.Register", "Power.Offered",
                                                                 "Current.Import", "Current.Offered.L2",
                                                                 "Power.Active.Import.L1"]}}
    async with gateway(tmp_path, ocpp) as gw:
        await node.wait_for("StatusNotification")
        gw.chargers[0].plug(car("a"))
        await node.wait_for("MeterValues", count=3)
        await node.call("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": site_cap(3, 21.4)})
        composite = await node.call("GetCompositeSchedule", {"connectorId": 0, "duration": 86400,
                                                              "chargingRateUnit": "W"})
        assert composite["status"] == "Accepted"
        gw.chargers[0].unplug()
        await node.wait_for("StopTransaction")
        await node.call("GetConfiguration", {})
    assert not node.invalid(), node.invalid()
    clock = [m for m in node.calls("MeterValues") if m["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"]
    assert clock and all(m["meterValue"][0]["timestamp"].endswith("Z") for m in clock)


async def test_unreachable_charger_is_faulted(tmp_path: Path, peer: Peer) -> None:
    from drivers.sim.faults import Fault, FaultKind
    async with await started(tmp_path, peer) as gw:
        await peer.wait_for("StatusNotification", lambda p: p["connectorId"] == 2)
        server = gw.site.lines[0].server
        assert server is not None
        server.set_fault(2, Fault(FaultKind.SILENT))
        faulted = await peer.wait_for("StatusNotification", lambda p: p["status"] == "Faulted")
        assert faulted["connectorId"] == 2 and faulted["errorCode"] == "InternalError"
        assert "timeout" in faulted["info"]
        assert gw.supervisor is not None
        assert gw.supervisor.status().units[1].availability is Availability.UNAVAILABLE
        server.set_fault(2, Fault(FaultKind.NONE))
        await wait_status(peer, 2, "Available")


async def test_a_server_that_picks_no_subprotocol_is_refused(tmp_path: Path) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    frames: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            frames.append(frame)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with gateway(tmp_path, {"url": f"ws://127.0.0.1:{port}"}) as gw:
            await asyncio.sleep(0.6)
            assert not gw.ocpp.booted
    assert frames == [], "not even a BootNotification goes to a server that did not agree to ocpp1.6"
