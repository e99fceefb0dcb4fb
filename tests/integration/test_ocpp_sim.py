"""The simulated OCPP charger: its smart-charging rules (pure), its vendor-style fail-safe, its offline queue, and
``powershare simulate --ocpp`` in-process against a real endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.clock import ManualClock
from support.ocpp_followers import car, until

from drivers.model import ChargerCapabilities
from drivers.ocpp.endpoint import EndpointSettings, OcppEndpoint
from drivers.ocpp.follower import OcppCharger
from drivers.ocpp.station import StationSettings
from drivers.sim.ocpp_charger import FAILSAFE_CURRENT_KEY, FAILSAFE_TIMEOUT_KEY, SimOcppCharger
from drivers.sim.ocpp_profiles import ProfileStore
from gateway.cli.main import build_parser, main
from gateway.cli.simulate import build_ocpp, build_site, serve

KEY = "0123456789abcdef0123"
WALL = 1_700_000_000.0


def profile(pid: int, purpose: str, stack: int, periods: list[tuple[float, float]], **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"charging_rate_unit": extra.pop("unit", "A"), "charging_schedule_period": [
        {"start_period": start, "limit": limit} for start, limit in periods]}
    if "duration" in extra:
        schedule["duration"] = extra.pop("duration")
    return {"charging_profile_id": pid, "stack_level": stack, "charging_profile_purpose": purpose,
            "charging_profile_kind": extra.pop("kind", "Relative"), "charging_schedule": schedule, **extra}


def test_profiles_stack_and_combine_as_ocpp_1_6_says() -> None:
    store = ProfileStore(connectors=2, phases=3)
    assert store.limit_a(1, WALL, None) == float("inf")  # no profile: no limit
    store.install(0, profile(1, "TxDefaultProfile", 1, [(0, 16)]))
    assert store.limit_a(1, WALL, 0) == store.limit_a(2, WALL, 0) == 16
    store.install(1, profile(2, "TxDefaultProfile", 1, [(0, 10)]))  # connector 1's own, same level: hides it there
    assert (store.limit_a(1, WALL, 0), store.limit_a(2, WALL, 0)) == (10, 16)
    store.install(1, profile(3, "TxProfile", 0, [(0, 25), (600, 12)]))  # replaces TxDefault during its transaction
    assert store.limit_a(1, WALL, 100) == 25 and store.limit_a(1, WALL, 700) == 12
    assert store.limit_a(1, WALL, None) == 10  # no transaction: the TxProfile does not apply
    store.install(0, profile(4, "ChargePointMaxProfile", 0, [(0, 11040)], unit="W", kind="Absolute",
                             valid_from="2023-01-01T00:00:00Z"))
    assert store.limit_a(1, WALL, 100) == 16  # 11040 W / (230 V x 3)
    store.install(1, profile(5, "TxDefaultProfile", 1, [(0, 8)]))  # same connector, stack and purpose: replaced
    assert [p.profile["charging_profile_id"] for p in store.installed if p.connector_id == 1] == [3, 5]
    store.end_transaction(1)
    assert store.limit_a(1, WALL, 100) == 8
    store.install(1, profile(6, "TxDefaultProfile", 2, [(0, 6)], duration=60))  # ends: falls through to level 1
    assert store.limit_a(1, WALL, 30) == 6 and store.limit_a(1, WALL, 60) == 8
    store.install(1, profile(7, "TxDefaultProfile", 3, [(0, 7)], valid_to="2020-01-01T00:00:00Z"))
    assert store.limit_a(1, WALL, 30) == 6  # expired
    assert store.clear({"charging_profile_purpose": "TxDefaultProfile", "connector_id": 1})
    assert not store.clear({"id": 99})
    assert store.limit_a(1, WALL, 30) == 16


@pytest.mark.parametrize(("connector", "changes", "transaction", "reason"), [
    (1, {"charging_profile_purpose": "TxProfile"}, None, "TxProfile without a transaction"),
    (1, {"charging_profile_purpose": "TxProfile", "transaction_id": 9}, 8, "TxProfile for another transaction"),
    (0, {"charging_profile_purpose": "TxProfile"}, 8, "TxProfile without a transaction"),
    (1, {"charging_profile_purpose": "ChargePointMaxProfile"}, None, "ChargePointMaxProfile only on connector 0"),
    (1, {"stack_level": 9}, None, "stack level out of range"),
    (3, {}, None, "unknown connector"),
    (1, {"valid_to": "tomorrow"}, None, "malformed date-time"),
])
def test_profiles_a_real_charger_refuses_are_refused(connector: int, changes: dict[str, Any],
                                                     transaction: int | None, reason: str) -> None:
    store = ProfileStore(connectors=2, phases=3)
    assert store.refusal(connector, {**profile(1, "TxDefaultProfile", 0, [(0, 16)]), **changes},
                         transaction) == reason


async def test_without_its_central_system_it_falls_back_to_its_failsafe_current_and_queues_its_messages() -> None:
    clock = ManualClock()
    settings = StationSettings("CP-1", KEY, failsafe_current_key=FAILSAFE_CURRENT_KEY,
                               failsafe_timeout_key=FAILSAFE_TIMEOUT_KEY)
    endpoint = OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), [settings])
    await endpoint.start()
    port = endpoint.port
    sim = SimOcppCharger("CP-1", f"ws://127.0.0.1:{port}", clock, password=KEY, failsafe_keys=True,
                         reconnect_s=0.1)
    await sim.start()
    try:
        station = endpoint.stations["CP-1"]
        await until(lambda: station.provisioning.done)
        driver = OcppCharger(station, 1, ChargerCapabilities(max_current_a=32, has_failsafe=True))
        await driver.configure_failsafe(8, 20)
        await driver.write_setpoint(20)
        sim.plug(car("a"))
        await until(lambda: station.connectors[1].transaction_id is not None)
        clock.advance(1)
        assert sim.phase_currents_a() == (20, 20, 20)

        await endpoint.stop()  # the gateway goes away
        await until(lambda: not sim.connected)
        clock.advance(19)
        assert sim.pilot_a() == 20 and not sim.in_failsafe
        clock.advance(1.5)
        assert sim.pilot_a() == 8 and sim.in_failsafe
        clock.advance(0.3)  # the car's lag
        assert sim.phase_currents_a() == (8, 8, 8)
        await asyncio.sleep(1.2)  # meter values keep being sampled (every second), into the queue
        sim.unplug()  # the transaction ends while offline: StopTransaction is queued too
        queued = [q.action for q in sim._queue]
        assert queued[-1] == "StopTransaction" and "MeterValues" in queued

        endpoint = OcppEndpoint(EndpointSettings(host="127.0.0.1", port=port), [settings])
        await endpoint.start()
        station = endpoint.stations["CP-1"]
        await until(lambda: sim.connected and not sim._queue and station.provisioning.done)
        assert not sim.in_failsafe
        assert station.connectors[1].transaction_id is None  # the queued stop arrived
        assert station.connectors[1].energy_wh == int(sim.connectors[1].energy_wh())  # meterStop, whole Wh
    finally:
        await sim.stop()
        await endpoint.stop()


async def test_simulate_runs_ocpp_chargers_against_a_gateway_endpoint(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    stations = [StationSettings(f"sim-ocpp-{n}", KEY) for n in (1, 2)]
    async with OcppEndpoint(EndpointSettings(host="127.0.0.1", port=0), stations) as endpoint:
        args = build_parser().parse_args([
            "simulate", "--ocpp", f"ws://127.0.0.1:{endpoint.port}/ocpp", "--ocpp-chargers", "2",
            "--ocpp-password-file", str(tmp_path / "key"), "--ocpp-cars", "2:16:1", "--status-every", "0.1"])
        site = build_site(args)
        sims = build_ocpp(args, site)
        stop, ready = asyncio.Event(), asyncio.Event()
        serving = asyncio.create_task(serve(site, [], args.status_every, stop, ready, ocpp=sims))
        try:
            await until(lambda: all(endpoint.stations[s.charge_point_id].provisioning.done for s in stations))
            await until(lambda: endpoint.stations["sim-ocpp-2"].connectors[1].transaction_id is not None)
            assert endpoint.stations["sim-ocpp-1"].connectors[1].status == "Available"
            assert sims[1].connectors[1].vehicle is not None and sims[1].connectors[1].vehicle.spec.phases == 1
        finally:
            stop.set()
            await serving
        assert not any(s.connected for s in sims)


@pytest.mark.parametrize("argv", [
    ["simulate", "--ocpp", "http://127.0.0.1:1"],
    ["simulate", "--ocpp", "ws://127.0.0.1:1", "--ocpp-chargers", "0"],
    ["simulate", "--ocpp", "ws://127.0.0.1:1", "--ocpp-password-file", "/no/such/file"],
])
def test_bad_ocpp_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "powershare simulate:" in capsys.readouterr().err
