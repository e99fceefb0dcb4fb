"""The central-system simulator over real websockets, with a charge point written with the ``ocpp`` library.

The charge point answers smart-charging calls with the gateway's own ``ProfileStore`` and ``composite``, so these
tests also carry the smart-charging module across the wire (``Decimal`` limits in, plain floats out, through the
library's own schema validation both ways).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import websockets
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from support.ocpp_builders import CPMAX, TXDEF, electrical, make_store, payload
from support.paths import REPO
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from drivers.aio import cancel_and_wait
from gateway.faces.ocpp.charging_profile import RateUnit, parse_set_charging_profile
from gateway.faces.ocpp.payload import PayloadError
from gateway.faces.ocpp.smart_charging import ClearStatus, composite, limits_at
from gateway.sim.csms import CallFailed, CentralSystem, ScriptStep, parse_script, summary
from gateway.site.config import ConfigError

ROOT = REPO
F = TypeVar("F", bound=Callable[..., Any])


def handles(action: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], on(action))


class SmartChargePoint(ChargePoint):  # type: ignore[misc]
    """A minimal charge point: two connectors, smart charging through the gateway's pure module."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=5)
        self.store = make_store(2)
        self.electrical = electrical(2)

    @handles("SetChargingProfile")
    def set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        try:
            connector, profile = parse_set_charging_profile({"connectorId": connector_id,
                                                             "csChargingProfiles": cs_charging_profiles})
            outcome = self.store.set_charging_profile(connector, profile, time.time())
        except PayloadError as exc:
            raise PropertyConstraintViolationError(description=str(exc)) from None
        return call_result.SetChargingProfile(status=outcome.status.value)

    @handles("GetCompositeSchedule")
    def get_composite(self, connector_id: int, duration: int, charging_rate_unit: str | None = None) -> Any:
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        body = composite(self.store, self.electrical, connector_id, time.time(), duration, unit).to_payload()
        return call_result.GetCompositeSchedule(status=body["status"], connector_id=body["connectorId"],
                                                schedule_start=body.get("scheduleStart"),
                                                charging_schedule=body.get("chargingSchedule"))

    @handles("ClearChargingProfile")
    def clear_profile(self, **filters: Any) -> Any:
        outcome = self.store.clear_charging_profile(profile_id=filters.get("id"))
        return call_result.ClearChargingProfile(status=outcome.status.value)

    @handles("RemoteStartTransaction")
    def remote_start(self, id_tag: str, **_: Any) -> Any:
        return call_result.RemoteStartTransaction(status="Accepted")


@asynccontextmanager
async def charge_point(url: str, cp_id: str = "CP-1", **connect_args: Any) -> AsyncIterator[SmartChargePoint]:
    """Connect, run the receive loop in a task this context owns, and close on exit."""
    async with connect(url, subprotocols=[websockets.Subprotocol("ocpp1.6")], **connect_args) as ws:
        assert ws.subprotocol == "ocpp1.6"
        cp = SmartChargePoint(cp_id, ws)
        loop_task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            await ws.close()
            await cancel_and_wait(loop_task)


async def boot(cp: SmartChargePoint) -> Any:
    return await cp.call(call.BootNotification(charge_point_model="test", charge_point_vendor="powershare"),
                         suppress=False)


async def test_boot_status_transactions_and_meter_values() -> None:
    lines: list[str] = []
    async with CentralSystem(heartbeat_interval=120, printer=lines.append) as csms, \
            charge_point(csms.url("CP-1")) as cp:
        answer = await boot(cp)
        assert answer.status == "Accepted" and answer.interval == 120 and answer.current_time.endswith("Z")
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
        assert (await cp.call(call.Authorize(id_tag="TAG1"))).id_tag_info["status"] == "Accepted"
        first = await cp.call(call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=100,
                                                    timestamp="2024-01-01T10:00:00Z"), suppress=False)
        second = await cp.call(call.StartTransaction(connector_id=2, id_tag="TAG2", meter_start=5,
                                                     timestamp="2024-01-01T10:01:00Z"), suppress=False)
        assert (first.transaction_id, second.transaction_id) == (1, 2)
        await cp.call(call.MeterValues(connector_id=1, transaction_id=1, meter_value=[
            {"timestamp": "2024-01-01T10:05:00Z", "sampledValue": [
                {"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "15.9", "measurand": "Current.Import", "phase": "L1", "unit": "A"}]}]), suppress=False)
        await cp.call(call.StopTransaction(meter_stop=1600, timestamp="2024-01-01T11:00:00Z", transaction_id=1,
                                           reason="EVDisconnected"), suppress=False)
        await cp.call(call.Heartbeat(), suppress=False)
        assert [r.action for r in csms.received] == ["BootNotification", "StatusNotification", "Authorize",
                                                     "StartTransaction", "StartTransaction", "MeterValues",
                                                     "StopTransaction", "Heartbeat"]
        assert csms.received[1].payload == {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
        assert csms.connected == {"CP-1"}
    text = "\n".join(lines)
    for expected in ("CP-1 <- BootNotification powershare test -> Accepted",
                     "CP-1 <- StatusNotification connector 1 Preparing",
                     "CP-1 <- StartTransaction connector 2 idTag=TAG2 meterStart=5 Wh at 2024-01-01T10:01:00Z "
                     "-> transactionId 2",
                     "CP-1 <- MeterValues connector 1 transaction 1: Energy.Active.Import.Register=1500Wh, "
                     "Current.Import.L1=15.9A",
                     "CP-1 <- StopTransaction transaction 1 meterStop=1600 Wh reason=EVDisconnected",
                     "CP-1 disconnected"):
        assert expected in text


async def test_transaction_ids_keep_increasing_across_charge_points_and_reconnections() -> None:
    async with CentralSystem(first_transaction_id=500) as csms:
        ids = []
        for cp_id in ("A", "B", "A"):
            async with charge_point(csms.url(cp_id), cp_id) as cp:
                await boot(cp)
                answer = await cp.call(call.StartTransaction(connector_id=1, id_tag="T", meter_start=0,
                                                             timestamp="2024-01-01T10:00:00Z"), suppress=False)
                ids.append(answer.transaction_id)
        assert ids == [500, 501, 502]


async def test_site_cap_is_sent_after_boot_and_acknowledged() -> None:
    async with CentralSystem(cap_site_a=31.5) as csms, charge_point(csms.url("CP-1")) as cp:
        await boot(cp)
        async with asyncio.timeout(5):
            exchange = await csms.wait_for_exchange("SetChargingProfile")
        assert exchange.response == {"status": "Accepted"} and exchange.error is None
        assert exchange.request["connectorId"] == 0
        assert limits_at(cp.store, cp.electrical, time.time() + 1).site_a == 31.5


async def test_script_runs_in_order_at_its_times_and_survives_a_failed_step() -> None:
    steps = parse_script([
        {"at": 0.3, "action": "GetCompositeSchedule",
         "payload": {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}},
        {"at": 0, "action": "SetChargingProfile",
         "payload": {"connectorId": 0, "csChargingProfiles": payload(7, 1, TXDEF, [(0, 21.4)])}},
        {"at": 0.1, "action": "SetChargingProfile",
         "payload": {"connectorId": 99, "csChargingProfiles": payload(8, 1, TXDEF)}},
        {"at": 0.2, "action": "SetChargingProfile",
         "payload": {"connectorId": 1, "csChargingProfiles": payload(9, 0, CPMAX)}},
        {"at": 0.4, "action": "ClearChargingProfile", "payload": {"id": 7}},
    ], "script.yaml")
    lines: list[str] = []
    async with CentralSystem(script=steps, printer=lines.append) as csms, charge_point(csms.url("CP-1")) as cp:
        started = time.monotonic()
        await boot(cp)
        async with asyncio.timeout(5):
            await csms.wait_for_exchange("ClearChargingProfile")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4
    outcomes = [(e.action, e.response, (e.error or "").split(":")[0]) for e in csms.exchanges]
    assert outcomes[0] == ("SetChargingProfile", {"status": "Accepted"}, "")
    assert outcomes[1] == ("SetChargingProfile", None, "PropertyConstraintViolationError")
    assert outcomes[2] == ("SetChargingProfile", {"status": "Rejected"}, "")  # ChargePointMax on connector 1
    action, schedule, _ = outcomes[3]
    assert action == "GetCompositeSchedule" and schedule is not None
    assert schedule["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 21.4}]
    assert outcomes[4] == ("ClearChargingProfile", {"status": "Accepted"}, "")
    assert cp.store.clear_charging_profile().status is ClearStatus.UNKNOWN  # profile 7 is gone
    assert any("FAILED PropertyConstraintViolationError" in line for line in lines)


async def test_calls_from_a_test_and_their_failures() -> None:
    async with CentralSystem(response_timeout=2.0) as csms, charge_point(csms.url("CP-1")) as cp:
        await boot(cp)
        answer = await csms.call("CP-1", "RemoteStartTransaction", {"idTag": "T1", "connectorId": 1})
        assert answer == {"status": "Accepted"}
        with pytest.raises(CallFailed, match="NotImplemented"):
            await csms.call("CP-1", "Reset", {"type": "Soft"})  # the test charge point has no handler
        with pytest.raises(KeyError):
            await csms.call("CP-2", "Reset", {"type": "Soft"})
        with pytest.raises(ValueError, match="not a call a central system sends"):
            await csms.call("CP-1", "BootNotification", {})
        with pytest.raises(ValueError, match="does not fit"):
            await csms.call("CP-1", "Reset", {"kind": "Soft"})
        cp.route_map.pop("RemoteStartTransaction")
        cp.route_map["RemoteStartTransaction"] = {"_on_action": _silent, "_skip_schema_validation": True}
        with pytest.raises(CallFailed, match="timeout"):
            await csms.call("CP-1", "RemoteStartTransaction", {"idTag": "T1"})


async def _silent(**_: Any) -> Any:
    await asyncio.sleep(3600)


async def test_basic_auth_and_identity_checks() -> None:
    async with CentralSystem(password="0123456789abcdef", allowed=["GW-0001", "A:B"]) as csms:
        port = csms.port
        async with charge_point(f"ws://GW-0001:0123456789abcdef@127.0.0.1:{port}/ocpp/GW-0001", "GW-0001") as cp:
            assert (await boot(cp)).status == "Accepted"
        async with charge_point(f"ws://127.0.0.1:{port}/A%3AB", "A:B",
                                additional_headers={"Authorization": "Basic QTpCOjAxMjM0NTY3ODlhYmNkZWY="}) as cp:
            assert (await boot(cp)).status == "Accepted"  # a colon in the identity (user "A:B")
        refusals = {
            "wrong password": (f"ws://GW-0001:wrong@127.0.0.1:{port}/GW-0001", 401),
            "no credentials": (f"ws://127.0.0.1:{port}/GW-0001", 401),
            "user is not the identity": (f"ws://OTHER:0123456789abcdef@127.0.0.1:{port}/GW-0001", 401),
            "unknown identity": (f"ws://GW-9:0123456789abcdef@127.0.0.1:{port}/GW-9", 404),
            "no identity": (f"ws://127.0.0.1:{port}/", 404),
        }
        for case, (url, status) in refusals.items():
            with pytest.raises(InvalidStatus) as err:
                async with charge_point(url):
                    pass
            assert err.value.response.status_code == status, case
        assert csms.received == [r for r in csms.received if r.charge_point in ("GW-0001", "A:B")]


async def test_a_client_without_the_ocpp16_subprotocol_is_refused() -> None:
    async with CentralSystem() as csms:
        with pytest.raises(InvalidStatus) as err:
            async with connect(csms.url("CP-1")):
                pass
        assert err.value.response.status_code == 400


async def test_a_second_connection_replaces_the_first() -> None:
    async with CentralSystem() as csms, charge_point(csms.url("CP-1")) as first:
        await boot(first)
        async with charge_point(csms.url("CP-1")) as second:
            async with asyncio.timeout(5):
                await first._connection.wait_closed()
            assert first._connection.close_reason == "replaced by a new connection"
            await boot(second)
            assert csms.connected == {"CP-1"}
            assert await csms.call("CP-1", "RemoteStartTransaction", {"idTag": "T"}) == {"status": "Accepted"}
            assert len([r for r in csms.received if r.action == "BootNotification"]) == 2


def test_script_errors_are_all_reported_with_their_step() -> None:
    with pytest.raises(ConfigError) as err:
        parse_script([{"at": -1, "action": "Reset", "payload": {"type": "Hard"}},
                      {"at": 1, "action": "Heartbeat"},
                      {"at": 2, "action": "Reset", "payload": {"type": "Hard", "extra": 1}},
                      {"at": 3, "action": "Reset", "when": 1}], "s.yaml")
    paths = [issue.path for issue in err.value.issues]
    assert paths == ["[0].at", "[1]", "[2]", "[3].when"]
    with pytest.raises(ConfigError, match="list of steps"):
        parse_script({"at": 1}, "s.yaml")


def test_site_cap_must_be_a_tenth_of_an_amp() -> None:
    with pytest.raises(ValueError, match=r"multiple of 0\.1"):
        CentralSystem(cap_site_a=32.15)
    assert ScriptStep(at=1, action="Reset", payload={"type": "Soft"}).at == 1


def test_summary_lines() -> None:
    assert summary("StatusNotification", {"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted",
                                          "info": "RCD"}) == "connector 2 Faulted error=GroundFailure info='RCD'"
    assert summary("Heartbeat", {}) == ""
    assert summary("DataTransfer", {"vendorId": "x" * 400}).endswith("...")


def test_the_command_runs_prints_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("- at: 0\n  action: ChangeAvailability\n  payload: {connectorId: 0, type: Inoperative}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-m", "gateway.cli", "csms", "--host", "127.0.0.1", "--port", "0",
                           "--script", str(script), "--cap-site", "40"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on ws://127.0.0.1:" in first, first + (proc.stderr.read() if proc.stderr else "")
        port = int(first.split("127.0.0.1:")[1].split("/")[0])

        async def visit() -> None:
            async with charge_point(f"ws://127.0.0.1:{port}/GW-7", "GW-7") as cp:
                await boot(cp)
                await asyncio.sleep(0.3)  # the scripted calls arrive meanwhile

        asyncio.run(visit())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "GW-7 <- BootNotification powershare test -> Accepted" in out
    assert "GW-7 -> SetChargingProfile" in out and "<- {\"status\":\"Accepted\"}" in out
    assert "GW-7 -> ChangeAvailability" in out and "FAILED NotImplementedError" in out
    assert out.rstrip().endswith("central system stopped")


def test_the_command_refuses_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(json.dumps([{"at": 1, "action": "Dance"}]))
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "csms", "--script", str(script)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30)
    assert proc.returncode == 2 and "bad.yaml: [0]: 'Dance' is not a call" in proc.stderr
