"""What the OCPP client costs, printed (never asserted): ``python -m pytest tests/test_ocpp_client_bench.py -q -s``.

* Draining the offline queue after reconnection: messages per second over loopback websockets to the project's
  central system (schema checks on both sides, one fsync per delivered message), against a bare websockets round
  trip measured in the same run.
* The limit provider's work per control step (site limit, unit caps, next change) with 20 connectors and a busy
  set of profiles, against one ``limits_at`` in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

from support.ocpp_builders import CPMAX, TXDEF, at, electrical, install, make_store, payload
from support.ocpp_peers import python_peer
from support.ocpp_rig import CP_ID, gateway, until
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from gateway.faces.ocpp.ledger import Ledger
from gateway.faces.ocpp.limit_provider import OcppLimits
from gateway.faces.ocpp.outbox import METER_VALUES, Outbox
from gateway.faces.ocpp.smart_charging import limits_at

MESSAGES = 300


async def bare_round_trip_s(count: int) -> float:
    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            frame = '[2,"x","Heartbeat",{}]'
            started = time.perf_counter()
            for _ in range(count):
                await ws.send(frame)
                await ws.recv()
            return (time.perf_counter() - started) / count


async def test_offline_queue_drain_rate(tmp_path: Path) -> None:
    database = tmp_path / "ocpp" / "charge-point.db"
    database.parent.mkdir(parents=True)
    with Ledger(database) as ledger:
        outbox = Outbox(ledger)
        for i in range(MESSAGES):
            outbox.append(METER_VALUES, {"connectorId": 1, "meterValue": [{
                "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                "sampledValue": [{"value": str(i), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
    baseline = await bare_round_trip_s(MESSAGES)
    async with python_peer(CP_ID) as peer, gateway(tmp_path, {"url": peer.url()}, n=1, limit=32) as gw:
        await until(lambda: gw.ocpp.booted)
        started = time.perf_counter()
        await until(lambda: len(gw.ocpp.station.outbox) == 0, timeout_s=60)
        per_message = (time.perf_counter() - started) / MESSAGES
    assert len(peer.calls("MeterValues")) == MESSAGES
    print(f"\noffline queue drain over loopback (baseline: bare websockets round trip, {baseline * 1e3:.3f} ms)")
    print(f"  {MESSAGES} MeterValues delivered      {per_message * 1e3:.3f} ms each, {1 / per_message:.0f}/s"
          f"  x {per_message / baseline:.1f} baseline")


def test_limit_provider_cost_per_control_step() -> None:
    connectors = 20
    store = make_store(connectors)
    install(store, 0, payload(1, 0, CPMAX, [(h * 3600, 63 - h) for h in range(24)], kind="Recurring",
                              recurrency="Daily"), at("00:00"))
    install(store, 0, payload(2, 0, TXDEF, [(0, 16), (1800, 10)], kind="Relative"), at("00:00"))
    for n in range(1, connectors + 1, 3):
        install(store, n, payload(10 + n, 1, TXDEF, [(0, 20), (7200, 12)]), at("00:00"))
    provider = OcppLimits(store, electrical(connectors), [f"cp{n}" for n in range(1, connectors + 1)])
    now = at("10:30")

    def per_call(fn: object, calls: int = 200) -> float:
        assert callable(fn)
        fn()
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - started) / calls

    baseline = per_call(lambda: limits_at(store, provider.electrical, now))
    step = per_call(lambda: (provider.site_limit_a(now), provider.unit_caps_a(now), provider.next_change(now)))
    print(f"\nlimit provider, {connectors} connectors (baseline: one limits_at, {baseline * 1e3:.3f} ms)")
    print(f"  site limit + unit caps + next change  {step * 1e3:.3f} ms  x {step / baseline:.1f} baseline"
          f"  {step * 100:.2f}% of a 1 s tick")
