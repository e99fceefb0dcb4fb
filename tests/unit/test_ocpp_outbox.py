"""The offline outbox: order, durability across crashes (a real killed process), ids, bounds, and the move of a
journal from the previous format into the ledger."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import REPO

from gateway.faces.ocpp.ledger import Ledger
from gateway.faces.ocpp.legacy_state import migrate
from gateway.faces.ocpp.outbox import METER_VALUES, NO_TRANSACTION_ID, START, STOP, Outbox, OutboxFull

ROOT = REPO


@contextlib.contextmanager
def opened(path: Path, **options: int) -> Iterator[Outbox]:
    with Ledger(path) as ledger:
        yield Outbox(ledger, **options)


def start(n: int) -> dict[str, object]:
    return {"connectorId": 1, "idTag": f"TAG{n}", "meterStart": n, "timestamp": f"2024-01-01T00:00:{n:02d}Z"}


def meter(n: int) -> dict[str, object]:
    return {"connectorId": 1, "meterValue": [{"timestamp": "2024-01-01T00:00:00Z",
                                              "sampledValue": [{"value": str(n)}]}]}


def stop(n: int) -> dict[str, object]:
    return {"meterStop": n, "timestamp": "2024-01-01T01:00:00Z"}


def drain(box: Outbox) -> list[tuple[str, dict[str, object]]]:
    """Deliver everything as a client would; StartTransactions get ids 100, 101, ..."""
    out = []
    ids = iter(range(100, 10_000))
    while (message := box.peek()) is not None:
        out.append((message.action, message.payload))
        box.mark_delivered(message.seq, transaction_id=next(ids) if message.action == START else None)
    return out


def test_fifo_and_exactly_once(tmp_path: Path) -> None:
    with opened(tmp_path / "q") as box:
        seqs = [box.append(METER_VALUES, meter(i)) for i in range(5)]
        assert seqs == sorted(seqs) and len(box) == 5
        head = box.peek()
        assert head is not None and head.seq == seqs[0]
        assert box.peek() == head  # peeking does not consume
        assert box.mark_delivered(head.seq) is True
        assert box.mark_delivered(head.seq) is False  # a second answer changes nothing
        assert [m[1] for m in drain(box)] == [meter(i) for i in range(1, 5)]
        assert box.peek() is None


def test_offline_transaction_ids_are_patched_in(tmp_path: Path) -> None:
    with opened(tmp_path / "q") as box:
        tx = box.new_local_tx()
        box.append(START, start(1), local_tx=tx)
        box.append(METER_VALUES, meter(1), local_tx=tx)
        box.append(STOP, stop(1), local_tx=tx)
        first = box.peek()
        assert first is not None and first.action == START and "transactionId" not in first.payload
        box.mark_delivered(first.seq, transaction_id=4711)
        assert box.transaction_id(tx) == 4711
        rest = drain(box)
    assert [(a, p["transactionId"]) for a, p in rest] == [(METER_VALUES, 4711), (STOP, 4711)]


def test_a_start_given_up_leaves_minus_one(tmp_path: Path) -> None:
    """Errata §3.18."""
    with opened(tmp_path / "q") as box:
        tx = box.new_local_tx()
        first = box.append(START, start(1), local_tx=tx)
        box.append(STOP, stop(1), local_tx=tx)
        box.mark_delivered(first)  # given up after TransactionMessageAttempts
        message = box.peek()
        assert message is not None and message.payload["transactionId"] == NO_TRANSACTION_ID


def test_patch_by_other_means(tmp_path: Path) -> None:
    with opened(tmp_path / "q") as box:
        box.append(STOP, stop(1), local_tx=9)
        box.patch_transaction_id(9, 55)
    with opened(tmp_path / "q") as box:
        message = box.peek()
        assert message is not None and message.payload["transactionId"] == 55


def test_everything_survives_a_reopen_including_ids_and_local_keys(tmp_path: Path) -> None:
    with opened(tmp_path / "q") as box:
        tx = box.new_local_tx()
        s = box.append(START, start(1), local_tx=tx)
        box.append(METER_VALUES, meter(1), local_tx=tx)
        box.mark_delivered(s, transaction_id=8)
        last_seq = box.append(STOP, stop(1), local_tx=tx)
    with opened(tmp_path / "q") as box:
        assert [(m.action, m.payload.get("transactionId")) for m in box.pending()] == [(METER_VALUES, 8), (STOP, 8)]
        assert box.new_local_tx() > tx
        assert box.append(METER_VALUES, meter(2)) > last_seq


def test_close_without_cleanup_loses_nothing(tmp_path: Path) -> None:
    """An outbox dropped without close(), as a crash would: every append that returned is there."""
    box = Outbox(Ledger(tmp_path / "q"))
    for i in range(10):
        box.append(METER_VALUES, meter(i))
    box.mark_delivered(box.pending()[0].seq)
    del box
    with opened(tmp_path / "q") as again:
        assert [m.payload for m in again.pending()] == [meter(i) for i in range(1, 10)]


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from gateway.faces.ocpp.ledger import Ledger
    from gateway.faces.ocpp.outbox import Outbox
    box = Outbox(Ledger(Path(sys.argv[1])))
    delivered = 0
    for i in range(100_000):
        box.append("MeterValues", {"n": i})
        if i % 3 == 2:
            head = box.peek()
            box.mark_delivered(head.seq)
            delivered += 1
        print(i, delivered, flush=True)
""")


def test_a_killed_writer_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of appending and delivering; what it confirmed must all be there once."""
    path = tmp_path / "q"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, env=env,
                          text=True) as child:
        assert child.stdout is not None
        confirmed = delivered = -1
        for line in child.stdout:
            confirmed, delivered = map(int, line.split())
            if confirmed >= 300:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    with opened(path) as box:
        values = [int(str(m.payload["n"])) for m in box.pending()]
    # Deliveries take the head, so what is left is one contiguous run ending at the last append.
    assert values == list(range(values[0], values[-1] + 1))
    assert values[0] <= delivered + 1  # nothing confirmed as delivered comes back ...
    assert values[-1] >= confirmed  # ... and nothing confirmed as appended is lost


def test_full_queue_drops_the_oldest_meter_values_but_never_start_or_stop(tmp_path: Path) -> None:
    with opened(tmp_path / "q", max_messages=4) as box:
        tx = box.new_local_tx()
        box.append(METER_VALUES, meter(0))  # the head: may be in flight, kept
        box.append(START, start(1), local_tx=tx)
        box.append(METER_VALUES, meter(1))
        box.append(STOP, stop(1), local_tx=tx)
        box.append(METER_VALUES, meter(2))
        assert box.dropped == 1
        assert [(m.action, m.payload.get("meterValue")) for m in box.pending()] == [
            (METER_VALUES, meter(0)["meterValue"]), (START, None), (STOP, None),
            (METER_VALUES, meter(2)["meterValue"])]
    with opened(tmp_path / "r", max_messages=2) as box:
        box.append(START, start(1), local_tx=1)
        box.append(STOP, stop(1), local_tx=1)
        with pytest.raises(OutboxFull):
            box.append(START, start(2), local_tx=2)
        assert len(box) == 2


def test_bad_appends_change_nothing(tmp_path: Path) -> None:
    with opened(tmp_path / "q") as box:
        with pytest.raises(ValueError, match="not a transaction-related"):
            box.append("Heartbeat", {})
        with pytest.raises(ValueError, match="local transaction key"):
            box.append(START, start(1))
        with pytest.raises(TypeError):
            box.append(METER_VALUES, {"x": object()})
        assert len(box) == 0
    with opened(tmp_path / "q") as box:
        assert len(box) == 0


def test_a_running_transaction_keeps_its_id_until_its_stop_is_delivered(tmp_path: Path) -> None:
    """Online, meter values are delivered as fast as they are queued, so the queue is often empty; the
    transaction's id must survive that until its StopTransaction is delivered, then be forgotten."""
    path = tmp_path / "q"
    with opened(path) as box:
        tx = box.new_local_tx()
        box.mark_delivered(box.append(START, start(1), local_tx=tx), transaction_id=31)
        sent = []
        for i in range(500):
            box.append(METER_VALUES, meter(i), local_tx=tx)
            sent += drain(box)
        assert {p["transactionId"] for _, p in sent} == {31}
        box.append(STOP, stop(1), local_tx=tx)
    with opened(path) as box:
        assert drain(box) == [(STOP, {**stop(1), "transactionId": 31})]
        for i in range(500):  # the finished transaction's id is eventually forgotten
            box.append(METER_VALUES, meter(i))
            drain(box)
        assert box.transaction_id(tx) is None


def _journal_line(record: dict[str, object]) -> bytes:
    """One record of the outbox journal the previous versions wrote: ``<crc32 hex> <json>\\n``."""
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def test_a_journal_of_the_previous_format_is_moved_into_the_ledger(tmp_path: Path) -> None:
    state = tmp_path / "ocpp"
    state.mkdir()
    records: list[dict[str, object]] = [
        {"op": "head", "next_seq": 1, "next_tx": 1},
        {"op": "add", "seq": 1, "action": START, "payload": start(1), "tx": 1},
        {"op": "add", "seq": 2, "action": METER_VALUES, "payload": meter(1), "tx": 1},
        {"op": "done", "seq": 1, "tx": 1, "id": 77},
        {"op": "add", "seq": 3, "action": STOP, "payload": stop(1), "tx": 1},
    ]
    (state / "outbox.journal").write_bytes(b"".join(map(_journal_line, records)) + b"0badc0de {torn")
    with Ledger(state / "charge-point.db") as ledger:
        assert migrate(state, ledger) is True
        box = Outbox(ledger)
        assert [(m.action, m.payload["transactionId"]) for m in box.pending()] == [(METER_VALUES, 77), (STOP, 77)]
        assert box.new_local_tx() == 2 and box.append(METER_VALUES, meter(2)) == 4
    assert not (state / "outbox.journal").exists() and (state / "outbox.journal.migrated").exists()
    with Ledger(state / "charge-point.db") as ledger:
        assert migrate(state, ledger) is False  # once only
        assert len(Outbox(ledger)) == 3
