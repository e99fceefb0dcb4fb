"""What the OCPP pieces cost, printed (never asserted): run ``python -m pytest tests/test_ocpp_bench.py -q``.

The gateway evaluates ``limits_at`` every control tick (about 1 s) and ``next_change`` after every change; the
outbox fsyncs once per message. Each figure is printed with its ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.ocpp_builders import CPMAX, TX, TXDEF, at, electrical, install, make_store, payload

from gateway.faces.ocpp.ledger import Ledger
from gateway.faces.ocpp.outbox import METER_VALUES, Outbox
from gateway.faces.ocpp.smart_charging import ProfileStore, composite, limits_at, next_change

CONNECTORS = 20


def per_call_s(fn: Callable[[], object], calls: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def busy_store() -> ProfileStore:
    """A site with a daily tariff cap (24 hourly periods), two charge-point defaults and a TxProfile on every
    second connector: more than an operator usually installs."""
    store = make_store(CONNECTORS)
    install(store, 0, payload(1, 0, CPMAX, [(h * 3600, 63 - h) for h in range(24)], kind="Recurring",
                              recurrency="Daily"), at("00:00"))
    install(store, 0, payload(2, 1, CPMAX, [(0, 40)], start="2024-01-01T18:00:00Z", duration=7200), at("00:00"))
    install(store, 0, payload(3, 0, TXDEF, [(0, 16), (1800, 10)], kind="Relative"), at("00:00"))
    install(store, 0, payload(4, 1, TXDEF, [(0, 22000)], unit="W"), at("00:00"))
    for n in range(1, CONNECTORS + 1, 2):
        store.start_transaction(n, at("07:00"), n)
        install(store, n, payload(100 + n, 0, TX, [(0, 32), (900, 12)], kind="Relative"), at("07:01"))
    return store


def test_print_smart_charging_costs(capsys: pytest.CaptureFixture[str]) -> None:
    el = electrical(CONNECTORS)
    store, empty = busy_store(), make_store(CONNECTORS)
    now = at("08:00")
    baseline = per_call_s(lambda: limits_at(empty, el, now), 200)
    figures = {
        "limits_at": per_call_s(lambda: limits_at(store, el, now), 200),
        "next_change": per_call_s(lambda: next_change(store, el, now), 5),
        "composite, connector 0, 24 h": per_call_s(lambda: composite(store, el, 0, now, 86_400), 5),
        "composite, connector 1, 24 h": per_call_s(lambda: composite(store, el, 1, now, 86_400), 5),
    }
    with capsys.disabled():
        print(f"\nsmart charging, {CONNECTORS} connectors, {len(store.profiles)} profiles "
              f"(baseline: limits_at with no profile, {baseline * 1e6:.1f} us)")
        for name, seconds in figures.items():
            print(f"  {name:32s} {seconds * 1e3:9.3f} ms  x{seconds / baseline:8.1f} baseline  "
                  f"{seconds:.2%} of a 1 s tick")
    assert all(seconds > 0 for seconds in figures.values())


def test_print_outbox_costs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = {"connectorId": 1, "transactionId": 5, "meterValue": [
        {"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [{"value": "123456", "unit": "Wh"}]}]}
    raw_path = tmp_path / "raw"
    with open(raw_path, "ab") as raw:
        def write_and_sync() -> None:
            raw.write(b"%08x %s\n" % (0, b'{"op":"add"}' * 8))
            raw.flush()
            os.fsync(raw.fileno())
        before = per_call_s(write_and_sync, 50)

    with Ledger(tmp_path / "durable.db") as ledger:
        box = Outbox(ledger)

        def round_trip() -> None:
            box.append(METER_VALUES, message)
            head = box.peek()
            assert head is not None
            box.mark_delivered(head.seq)
        durable = per_call_s(round_trip, 50)
    with open(raw_path, "ab") as raw:
        baseline = (before + per_call_s(write_and_sync, 50)) / 2  # fsync times drift: average both sides
    with capsys.disabled():
        print(f"\noutbox (baseline: one raw append + fsync, {baseline * 1e3:.3f} ms)")
        print(f"  append + peek + deliver, sqlite WAL  {durable * 1e3:8.3f} ms  x{durable / baseline:5.2f} baseline "
              f"(two committed transactions per message)")
    assert durable > 0
