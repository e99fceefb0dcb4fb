"""The gateway's OCPP endpoint over real websockets on loopback: who is admitted, what a follower is configured
with, what a misbehaving follower gets, and how the driver's errors map what happens on the wire."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.certs import self_signed
from support.clock import ManualClock
from support.ocpp_followers import car, until
from support.raw_charge_point import RawChargePoint, auth_header
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from drivers.errors import ConnectionLost, DeviceTimeout, RequestRefused, UnsupportedOperation
from drivers.model import ChargerCapabilities, Iec61851State
from drivers.ocpp.endpoint import EndpointSettings, OcppEndpoint, basic_credentials_ok, identity_of
from drivers.ocpp.follower import OcppCharger
from drivers.ocpp.profiles import PROFILE_ID_BASE
from drivers.ocpp.station import Station, StationSettings
from drivers.sim.clock import ScaledClock
from drivers.sim.ocpp_charger import FAILSAFE_CURRENT_KEY, FAILSAFE_TIMEOUT_KEY, SimOcppCharger

KEY = "0123456789abcdef0123"
CAPS = ChargerCapabilities(max_current_a=32)


def station(cp_id: str, **options: object) -> StationSettings:
    return StationSettings(cp_id, KEY, **options)  # type: ignore[arg-type]


@pytest.fixture
async def endpoint() -> AsyncIterator[OcppEndpoint]:
    stations = [station("CP-1"), station("CP-2"), station("CP-3", timeout_s=0.3),
                station("CP-4", failsafe_current_key=FAILSAFE_CURRENT_KEY, failsafe_timeout_key=FAILSAFE_TIMEOUT_KEY),
                station("CP-5", stack_level=50), station("CP-6", connectors=(1, 2))]
    async with OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0, id_tags=frozenset({"GOOD"})),
                            stations) as running:
        yield running


def url(endpoint: OcppEndpoint) -> str:
    return f"ws://127.0.0.1:{endpoint.port}/ocpp"


async def refused_with(address: str, headers: dict[str, str], subprotocols: list[str] | None = None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(address, subprotocols=subprotocols or ["ocpp1.6"],  # type: ignore[arg-type]
                           additional_headers=headers):
            pass
    return refused.value.response.status_code


async def test_only_configured_chargers_with_their_password_and_the_subprotocol_get_in(
        endpoint: OcppEndpoint) -> None:
    base = url(endpoint)
    assert await refused_with(f"{base}/CP-9", auth_header("CP-9", KEY)) == 404
    assert await refused_with(f"{base}/CP-1", auth_header("CP-1", "wrong-password-0000")) == 401
    assert await refused_with(f"{base}/CP-1", {}) == 401
    assert await refused_with(f"{base}/CP-1", auth_header("CP-2", KEY)) == 401  # the user must be the identity
    with pytest.raises(InvalidStatus) as no_protocol:
        async with connect(f"{base}/CP-1", additional_headers=auth_header("CP-1", KEY)):
            pass
    assert no_protocol.value.response.status_code == 400
    async with connect(f"{base}/CP-1", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                       additional_headers=auth_header("CP-1", KEY)) as ws:
        assert ws.subprotocol == "ocpp1.6"
        await until(lambda: endpoint.stations["CP-1"].link is not None)
    assert all(s.link is None for s in endpoint.stations.values() if s.settings.charge_point_id != "CP-1")
    intruder = SimOcppCharger("CP-2", base, ScaledClock(), password="not-its-password-00", reconnect_s=0.05)
    await intruder.start()
    try:
        await until(lambda: len(intruder.refused) >= 2)  # it keeps trying, and keeps being refused
    finally:
        await intruder.stop()
    # its first guess is checked; then the address has used its five and is refused unchecked
    assert "HTTP 401" in intruder.refused[0] and "HTTP 429" in intruder.refused[-1] and intruder.connections == 0


def test_identity_and_credentials_parsing() -> None:
    assert identity_of("/ocpp/CP%2D1") == "CP-1" and identity_of("/CP-1/?x=1") == "CP-1"
    token = base64.b64encode(b"CP-1:pass:with:colons").decode()
    assert basic_credentials_ok(f"Basic {token}", "CP-1", "pass:with:colons")
    assert not basic_credentials_ok(f"Basic {token}", "CP-1", "pass")
    assert not basic_credentials_ok("Basic !!!not-base64", "CP-1", "pass")
    assert not basic_credentials_ok(f"Bearer {token}", "CP-1", "pass:with:colons")


async def test_a_follower_is_configured_on_connecting_and_its_setpoint_is_a_tx_default_profile(
        endpoint: OcppEndpoint) -> None:
    sim = SimOcppCharger("CP-1", url(endpoint), ScaledClock(), password=KEY, id_tag="GOOD")
    await sim.start()
    try:
        station1 = endpoint.stations["CP-1"]
        await until(lambda: station1.provisioning.done and station1.connectors[1].status is not None)
        assert station1.provisioning.problems == []
        assert sim.config["MeterValueSampleInterval"] == "1"
        assert sim.config["MeterValuesSampledData"].split(",")[0] == "Current.Import"
        assert station1.stack_level == 8  # the sim's ChargeProfileMaxStackLevel
        assert station1.identity.serial == "CP-1" and station1.identity.firmware == "sim-1.0"
        [guard] = sim.store.installed  # until the first setpoint, a car would get 0 A, not the charger's maximum
        assert (guard.connector_id, guard.purpose, guard.stack_level) == (0, "TxDefaultProfile", 7)
        assert guard.profile["charging_profile_id"] == PROFILE_ID_BASE
        sim.plug(car("early"))
        await until(lambda: sim.status() == "Preparing" or sim.connectors[1].tx_key is not None)
        assert sim.pilot_a() == 0
        sim.unplug()
        driver = OcppCharger(station1, 1, CAPS)
        await driver.write_setpoint(16.79)
        installed = sim.store.installed[-1]
        assert installed.connector_id == 1 and installed.purpose == "TxDefaultProfile" and installed.stack_level == 8
        assert installed.profile["charging_profile_id"] == PROFILE_ID_BASE + 1
        assert installed.profile["charging_profile_kind"] == "Relative"
        assert float(installed.profile["charging_schedule"]["charging_schedule_period"][0]["limit"]) == 16.7

        sim.plug(car("a"))
        await until(lambda: sim.phase_currents_a()[0] == 16.7)
        await until(lambda: (driver_state(station1) == (Iec61851State.C, 16.7)))
        reading = await driver.read()
        assert reading.session_energy_wh is not None and reading.energy_wh is not None
        assert station1.connectors[1].transaction_id is not None
        await driver.write_setpoint(0)  # pauses: the charger reports SuspendedEVSE, still plugged in
        await until(lambda: sim.status() == "SuspendedEVSE")
        await until(lambda: driver_state(station1) == (Iec61851State.B, 0.0))
    finally:
        await sim.stop()


def driver_state(station: Station) -> tuple[Iec61851State | None, float | None]:
    try:
        reading = station.reading(1, 3)
    except (ConnectionLost, DeviceTimeout):
        return (None, None)
    return reading.state, reading.current_a[0]


async def test_driver_errors_say_what_happened_on_the_wire(endpoint: OcppEndpoint) -> None:
    with pytest.raises(ConnectionLost):
        await OcppCharger(endpoint.stations["CP-1"], 1, CAPS).write_setpoint(10)

    sim = SimOcppCharger("CP-5", url(endpoint), ScaledClock(), password=KEY)  # stack level 50 > its 8
    await sim.start()
    try:
        await until(lambda: endpoint.stations["CP-5"].provisioning.done)
        with pytest.raises(RequestRefused, match="Rejected") as rejected:
            await OcppCharger(endpoint.stations["CP-5"], 1, CAPS).write_setpoint(10)
        assert rejected.value.answer == "Rejected"
    finally:
        await sim.stop()

    silent = RawChargePoint(url(endpoint), "CP-3", KEY, answer=lambda action, payload: None)
    async with silent:
        station3 = endpoint.stations["CP-3"]
        await until(lambda: station3.provisioning.done)
        assert any("no answer" in p for p in station3.provisioning.problems)
        with pytest.raises(DeviceTimeout):  # after the station's own 0.3 s, not the default 3 s
            async with asyncio.timeout(2):
                await OcppCharger(station3, 1, CAPS).write_setpoint(10)

        async def hang_up() -> None:
            await until(lambda: any(a == "SetChargingProfile" for a, _ in silent.calls[-1:]))
            await silent.__aexit__()

        closing = asyncio.create_task(hang_up())
        with pytest.raises(ConnectionLost):  # at once, not after the timeout
            await OcppCharger(station3, 1, CAPS).write_setpoint(12)
        await closing


async def test_a_charger_s_own_failsafe_keys_are_written_and_their_absence_is_unsupported(
        endpoint: OcppEndpoint) -> None:
    sims = [SimOcppCharger(cp, url(endpoint), ScaledClock(), password=KEY, failsafe_keys=True)
            for cp in ("CP-1", "CP-4")]
    for sim in sims:
        await sim.start()
    try:
        await until(lambda: all(endpoint.stations[cp].provisioning.done for cp in ("CP-1", "CP-4")))
        with pytest.raises(UnsupportedOperation):
            await OcppCharger(endpoint.stations["CP-1"], 1, CAPS).configure_failsafe(10, 20)
        await OcppCharger(endpoint.stations["CP-4"], 1, CAPS).configure_failsafe(10.55, 19.2)
        assert sims[1].failsafe_current_a == 10.5 and sims[1].failsafe_timeout_s == 20
    finally:
        for sim in sims:
            await sim.stop()


async def test_malformed_messages_get_callerrors_and_disturb_nobody(endpoint: OcppEndpoint) -> None:
    sim = SimOcppCharger("CP-1", url(endpoint), ScaledClock(), password=KEY)
    await sim.start()
    try:
        async with RawChargePoint(url(endpoint), "CP-2", KEY) as raw:
            station2 = endpoint.stations["CP-2"]
            await until(lambda: station2.provisioning.done and endpoint.stations["CP-1"].provisioning.done)
            frames = {
                "m1": '[2, "m1", "Heartbeat"]',
                "m2": '[2, "m2", "StatusNotification", {"connectorId": "x", "errorCode": "NoError", '
                      '"status": "Available"}]',
                "m3": '[2, "m3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
                      '"status": "Sleeping"}]',
                "m4": '[2, "m4", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "yesterday", '
                      '"sampledValue": [{"value": "1"}]}]}]',
                "m5": '[2, "m5", "NoSuchAction", {}]',
                "m6": '[2, "m6", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m", "x": 1}]',
                "m7": '[2, "m7", "StartTransaction", {"connectorId": 1, "idTag": "GOOD", "meterStart": 0, '
                      '"timestamp": "not a time"}]',
                "m8": '[9, "m8"]',
                "m9": '[2, "m9", "Reset", {"type": "Soft"}]',
                "m11": '[2, "m11", "Heartbeat", {"a": ' + "[" * 20 + "]" * 20 + '}]',
            }
            for text in frames.values():
                await raw.send_raw(text)
            for text in ("not json at all", b"\xff\xfe", '{"a": "dict"}', '[2, 42, "Heartbeat", {}]', "[]"):
                await raw.send_raw(text)
            codes = {mid: (await raw.reply(mid))[2] for mid in frames}
            assert codes == {"m1": "FormationViolation", "m2": "TypeConstraintViolation",
                             "m3": "FormationViolation", "m4": "PropertyConstraintViolation",
                             "m5": "NotImplemented", "m6": "FormationViolation",
                             "m7": "PropertyConstraintViolation", "m8": "ProtocolError", "m9": "NotSupported",
                             "m11": "FormationViolation"}
            assert station2.malformed == 5
            assert station2.connectors[1].status is None  # nothing it sent was taken
            heartbeat = await raw.call("Heartbeat", {})
            assert heartbeat[0] == 3 and heartbeat[2]["currentTime"].endswith("Z")

            await raw.status("Available")
            assert station2.connectors[1].status == "Available"
            # the well-behaved neighbour was led all along
            await OcppCharger(endpoint.stations["CP-1"], 1, CAPS).write_setpoint(20)
            assert sim.store.installed[-1].profile["charging_schedule"]["charging_schedule_period"][0]["limit"] == 20
    finally:
        await sim.stop()


async def test_deep_json_and_refused_calls_cost_one_log_line_and_never_the_connection(
        endpoint: OcppEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12: deeply nested JSON closed a charger's connection with a RecursionError, and every unknown or
    central-system-only action logged a full traceback."""
    caplog.set_level(logging.WARNING)
    async with RawChargePoint(url(endpoint), "CP-2", KEY) as raw:
        station2 = endpoint.stations["CP-2"]
        await until(lambda: station2.provisioning.done)
        await raw.send_raw('[2, "d1", "Heartbeat", {"a": ' + "[" * 100_000 + "]" * 100_000 + "}]")
        for action in ("Reset", "NoSuchAction", "StatusNotification"):
            assert (await raw.call(action, {}))[0] == 4
        heartbeat = await raw.call("Heartbeat", {})
        assert heartbeat[0] == 3 and not raw.closed
        assert station2.malformed == 1
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_transactions_are_issued_locally_and_idtags_checked_against_the_local_list(
        endpoint: OcppEndpoint) -> None:
    async with RawChargePoint(url(endpoint), "CP-6", KEY) as raw:
        assert (await raw.call("Authorize", {"idTag": "GOOD"}))[2]["idTagInfo"]["status"] == "Accepted"
        assert (await raw.call("Authorize", {"idTag": "STRANGER"}))[2]["idTagInfo"]["status"] == "Invalid"
        now = "2024-01-01T10:00:00Z"
        first = await raw.call("StartTransaction", {"connectorId": 1, "idTag": "GOOD", "meterStart": 100,
                                                    "timestamp": now})
        second = await raw.call("StartTransaction", {"connectorId": 2, "idTag": "STRANGER", "meterStart": 5,
                                                     "timestamp": now})
        unknown = await raw.call("StartTransaction", {"connectorId": 3, "idTag": "GOOD", "meterStart": 5,
                                                      "timestamp": now})
        ids = [first[2]["transactionId"], second[2]["transactionId"], unknown[2]["transactionId"]]
        assert len(set(ids)) == 3
        assert [f[2]["idTagInfo"]["status"] for f in (first, second, unknown)] == ["Accepted", "Invalid", "Invalid"]
        connectors = endpoint.stations["CP-6"].connectors
        assert connectors[1].transaction_id == ids[0] and connectors[1].meter_start_wh == 100
        stop = await raw.call("StopTransaction", {"transactionId": ids[0], "meterStop": 900, "timestamp": now,
                                                  "idTag": "GOOD"})
        assert stop[0] == 3 and stop[2]["idTagInfo"]["status"] == "Accepted"
        assert connectors[1].transaction_id is None and connectors[1].energy_wh == 900


async def test_readings_must_be_fresh_while_a_car_is_served_and_history_is_not_a_measurement() -> None:
    clock = ManualClock()
    wall = ManualClock(1_700_000_000.0)
    async with (OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [station("CP-1")], clock=clock,
                             wall=wall) as endpoint,
                RawChargePoint(url(endpoint), "CP-1", KEY) as raw):
        station1 = endpoint.stations["CP-1"]
        await until(lambda: station1.provisioning.done)
        with pytest.raises(DeviceTimeout, match="no StatusNotification"):
            station1.reading(1, 3)
        await raw.call("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0,
                                            "timestamp": "2023-11-14T22:13:20Z"})
        await raw.status("Charging")
        assert station1.reading(1, 3).current_a == (None, None, None)  # the first sample is on its way

        await raw.meter_values((16.0, 15.5, 0.0), wall() - 3600)  # kept while offline: history
        assert station1.reading(1, 3).current_a == (None, None, None)
        assert station1.reading(1, 3).energy_wh == 12345
        await raw.meter_values((16.0, 15.5, 0.0), wall())
        assert station1.reading(1, 3).current_a == (16.0, 15.5, 0.0)
        await raw.meter_values((20.0, 20.0, 20.0), wall() - 5)  # older than what we have: ignored
        assert station1.reading(1, 3).current_a == (16.0, 15.5, 0.0)

        clock.advance(station1.settings.stale_after_s + 0.5)
        with pytest.raises(DeviceTimeout, match=r"no Current.Import in meter values for 6 s"):
            station1.reading(1, 3)
        await raw.meter_values((6.0, 6.0, 6.0), wall())
        assert station1.reading(1, 3).current_a == (6.0, 6.0, 6.0)

        await raw.status("Finishing")
        await raw.call("StopTransaction", {"transactionId": station1.connectors[1].transaction_id,
                                           "meterStop": 20000, "timestamp": "2023-11-14T22:13:20Z"})
        clock.advance(60)  # no car served: nothing can go stale, and nothing flows
        reading = station1.reading(1, 3)
        assert reading.state is Iec61851State.A and reading.current_a == (0.0, 0.0, 0.0)


async def test_a_reconnecting_charger_replaces_its_old_connection(endpoint: OcppEndpoint) -> None:
    async with RawChargePoint(url(endpoint), "CP-2", KEY) as first:
        await until(lambda: endpoint.stations["CP-2"].provisioning.done)
        async with RawChargePoint(url(endpoint), "CP-2", KEY):
            await until(lambda: first.closed)
            await until(lambda: endpoint.stations["CP-2"].provisioning.done)
            assert endpoint.stations["CP-2"].link is not None
        await until(lambda: endpoint.stations["CP-2"].link is None)


async def test_with_a_certificate_the_endpoint_speaks_tls_only(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = EndpointSettings(host="127.0.0.1", port=0, tls_cert_file=cert, tls_key_file=key)
    async with OcppEndpoint(settings, [station("CP-1")]) as endpoint:
        trust = ssl.create_default_context(cafile=str(cert))
        sim = SimOcppCharger("CP-1", f"wss://127.0.0.1:{endpoint.port}", ScaledClock(), password=KEY,
                             ssl_context=trust)
        await sim.start()
        try:
            await until(lambda: endpoint.stations["CP-1"].provisioning.done)
            assert endpoint.url("CP-1").startswith("wss://")
        finally:
            await sim.stop()
        with pytest.raises(InvalidMessage):  # plain websockets to a TLS port: no HTTP answer
            async with asyncio.timeout(2), connect(f"ws://127.0.0.1:{endpoint.port}/CP-1",
                                                   subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                                   additional_headers=auth_header("CP-1", KEY)):
                pass



async def test_a_follower_whose_samples_are_overdue_is_asked_again() -> None:
    """Issue 12: a charger that kept its old 60 s MeterValues schedule after the gateway set 1 s was unavailable
    for ~55 s after every connection; the gateway now asks for a sample (TriggerMessage) once one is overdue."""
    clock = ManualClock()
    wall = ManualClock(1_700_000_000.0)
    async with (OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [station("CP-1")], clock=clock,
                             wall=wall) as endpoint,
                RawChargePoint(url(endpoint), "CP-1", KEY) as raw):
        station1 = endpoint.stations["CP-1"]
        driver = OcppCharger(station1, 1, CAPS)
        await until(lambda: station1.provisioning.done)
        await raw.status("Charging")
        await raw.meter_values((16.0, 16.0, 16.0), wall())
        asked = len([c for c in raw.calls if c[0] == "TriggerMessage"])
        await driver.read()  # fresh: nothing asked
        clock.advance(2.5 * station1.settings.meter_interval_s)
        await driver.read()
        await until(lambda: len([c for c in raw.calls if c[0] == "TriggerMessage"]) == asked + 1)
        assert raw.calls[-1] == ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1})
        await driver.read()  # asked already within the last two intervals: not again
        assert len([c for c in raw.calls if c[0] == "TriggerMessage"]) == asked + 1


def test_the_simulator_takes_a_new_sample_interval_at_once() -> None:
    """Issue 12, the simulator's side: it kept its old 60 s schedule after the gateway set 1 s."""
    sim = SimOcppCharger("CP-1", "ws://127.0.0.1:9/ocpp", ScaledClock(), password=KEY)
    sim.connectors[1].next_sample = 1000.0 + 60  # the schedule of a transaction under the old interval
    assert sim.change_configuration("MeterValueSampleInterval", "1") == "Accepted"
    assert sim.connectors[1].next_sample <= 1000.0  # due at the next tick, then every second


async def test_one_bad_sample_never_blinds_the_gateway() -> None:
    """Issue 12: a MeterValues stamped in the future made the gateway ignore every later sample from that charger
    until it reconnected, and a charger reporting 6553.5 A was believed."""
    clock = ManualClock()
    wall = ManualClock(1_700_000_000.0)
    async with (OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [station("CP-1")], clock=clock,
                             wall=wall) as endpoint,
                RawChargePoint(url(endpoint), "CP-1", KEY) as raw):
        station1 = endpoint.stations["CP-1"]
        driver = OcppCharger(station1, 1, CAPS)
        await until(lambda: station1.provisioning.done)
        await raw.status("Charging")
        assert (await raw.meter_values((16.0, 16.0, 16.0), wall() + 10 * 365 * 86400))[0] == 3  # ten years ahead
        assert (await driver.read()).current_a == (16.0, 16.0, 16.0)
        clock.advance(1)
        wall.advance(1)
        await raw.meter_values((6.0, 6.0, 6.0), wall())
        assert (await driver.read()).current_a == (6.0, 6.0, 6.0)  # the next real sample is taken

        clock.advance(1)
        wall.advance(1)
        await raw.meter_values((6553.5, 6.0, -1.0), wall())
        reading = await driver.read()
        assert reading.current_a[0] is None and reading.current_a[1] == 6.0 and reading.current_a[2] is None
        assert {"current_l1", "Current.Import.L3"} <= set(reading.invalid)


async def refused_from(address: str, target: str, password: str) -> int | None:
    """HTTP status refusing a connection from local ``address`` (None: it was let in)."""
    try:
        async with connect(target, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           additional_headers=auth_header("CP-1", password), local_addr=(address, 0)):
            return None
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_password_guessing_is_throttled_and_the_right_password_still_gets_in() -> None:
    """Issue 12: the endpoint checked 906 wrong passwords a second. Addresses on loopback: 127.0.0.0/8; the
    throttle's clock stands still, so the bounds below are exact."""
    async with OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [station("CP-1")],
                            clock=ManualClock()) as endpoint:
        await _guess_at(endpoint, url(endpoint) + "/CP-1")


async def _guess_at(endpoint: OcppEndpoint, target: str) -> None:
    statuses = [await refused_from("127.0.0.2", target, "wrong") for _ in range(20)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # unchecked after five
    assert endpoint.auth.failures == 5
    assert await refused_from("127.0.0.3", target, KEY) is None  # another address: in at once
    for n in range(10, 40):  # many addresses: the endpoint's own budget runs out
        for _ in range(5):
            await refused_from(f"127.0.1.{n}", target, "wrong")
    assert endpoint.auth.failures == 30 + 1  # the endpoint's burst, then one for CP-1's trickle
    assert await refused_from("127.0.0.3", target, KEY) is None  # where it authenticated before: at once
