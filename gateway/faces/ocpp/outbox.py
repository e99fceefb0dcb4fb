"""The persistent queue of transaction-related messages (StartTransaction, StopTransaction, sampled and
clock-aligned MeterValues) that must reach the central system in order, across offline periods and restarts
(spec §3.7, §4.8; errata §3.18).

Storage is an append-only journal, one record per line: ``<crc32 hex> <json>\\n``, written and fsync'd before a
call returns. A crash can only leave the last record half-written; at open such a record fails its checksum (or
lacks its newline) and is discarded, and the file is cut back to the last whole record. When most records
describe delivered messages the journal is rewritten to a temporary file and renamed over the old one, so it
stays small (``gateway.site.store.write_atomically``); the rename is atomic, so a crash during compaction leaves the
old journal intact.

Guarantees, for a caller that peeks, sends, and marks the message delivered once the central system answered:

* order: messages come out of ``peek`` in the order they were appended;
* nothing lost: an ``append`` that returned survives a crash or power cut;
* no duplicates: a message marked delivered is never handed out again, even after a restart. The one window
  left is between the central system's answer and ``mark_delivered`` returning: a crash exactly there resends
  that one message after restart (no protocol can close it; the central system sees the same timestamp and
  meter values again);
* transaction ids: a transaction gets a local key (``new_local_tx``); its StopTransaction and MeterValues are
  queued under that key and go out carrying the central system's ``transactionId`` once StartTransaction.conf
  gave it (``mark_delivered(seq, transaction_id=...)`` records both in one write). The id is kept until the
  transaction's StopTransaction is delivered. If the StartTransaction was given up, they go out with
  ``transactionId`` -1 (errata §3.18).

Bound: at most ``max_messages`` pending. When full, the oldest pending MeterValues (not the one at the head,
which may be in flight) is dropped to make room, and ``dropped`` counts it: meter samples are the least harmful
loss, StopTransaction still carries the final meter reading. If only Start/StopTransaction messages are pending
(thousands of sessions while offline), ``append`` raises ``OutboxFull``: the caller must not start another
transaction then.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from gateway.errors import PeerError
from gateway.site.store import write_atomically

START = "StartTransaction"
STOP = "StopTransaction"
METER_VALUES = "MeterValues"
ACTIONS = frozenset({START, STOP, METER_VALUES})
NO_TRANSACTION_ID = -1
"""Errata §3.18: the id to send when StartTransaction never got through."""


class OutboxFull(PeerError, RuntimeError):
    """Only Start/StopTransaction messages are pending and the bound is reached."""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    seq: int
    """Identifies the message for ``mark_delivered``; increases with every append, never reused."""
    action: str
    payload: dict[str, Any]
    """Ready to send: ``transactionId`` already patched in for messages queued under a local key."""
    local_tx: int | None


def _frame(record: Mapping[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _unframe(line: bytes) -> dict[str, Any] | None:
    """The record in one journal line, or None if it is damaged."""
    if len(line) < 10 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("op"), str) else None


class Outbox:
    """A durable FIFO for one charge point. Not thread-safe; one owner (the OCPP client's sender)."""

    def __init__(self, path: Path, *, max_messages: int = 10_000, durable: bool = True) -> None:
        """Open or create the journal at ``path``. ``durable=False`` skips the fsync after each record (tests of
        logic only); a compaction is always written with ``gateway.site.store.write_atomically``."""
        if max_messages < 2:
            raise ValueError("max_messages must be at least 2")
        self.path = path
        self.max_messages = max_messages
        self.durable = durable
        self.discarded_records = 0
        """Damaged records found when opening (a torn last write, or disk corruption)."""
        self.dropped = 0
        """MeterValues dropped since opening because the queue was full."""
        self._pending: dict[int, dict[str, Any]] = {}
        self._tx_ids: dict[int, int] = {}
        self._finished: set[int] = set()
        """Local keys whose StopTransaction was delivered: their id is needed only by messages still pending."""
        self._next_seq = 1
        self._next_tx = 1
        self._records = 0
        self._file: BinaryIO | None = None
        self._replay()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the outbox's lifetime, closed in close()

    # --- opening -------------------------------------------------------------------------------------------------

    def _replay(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._rewrite()
            return
        for line in data.splitlines(keepends=True):
            record = _unframe(line)
            if record is None or not self._apply(record):
                self.discarded_records += 1
            else:
                self._records += 1
        if self.discarded_records:
            self._rewrite()  # the damage (a torn tail, or worse) is gone from the file from now on

    def _apply(self, record: dict[str, Any]) -> bool:
        """Fold one record into the state; False if it makes no sense (treated as damage)."""
        op = record["op"]
        try:
            if op == "head":
                self._next_seq = max(self._next_seq, int(record["next_seq"]))
                self._next_tx = max(self._next_tx, int(record["next_tx"]))
            elif op == "add":
                seq = int(record["seq"])
                if record["action"] not in ACTIONS or not isinstance(record["payload"], dict):
                    return False
                tx = record.get("tx")
                self._pending[seq] = {"action": record["action"], "payload": record["payload"],
                                      "tx": None if tx is None else int(tx)}
                self._next_seq = max(self._next_seq, seq + 1)
                if tx is not None:
                    self._next_tx = max(self._next_tx, int(tx) + 1)
            elif op == "done":
                self._forget(self._pending.pop(int(record["seq"]), None))
                if record.get("tx") is not None:
                    self._tx_ids[int(record["tx"])] = int(record["id"])
            elif op == "txid":
                self._tx_ids[int(record["tx"])] = int(record["id"])
            else:
                return False
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def _forget(self, message: Mapping[str, Any] | None) -> None:
        if message is not None and message["action"] == STOP and message["tx"] is not None:
            self._finished.add(message["tx"])

    # --- writing -------------------------------------------------------------------------------------------------

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            raise ValueError("the outbox is closed")
        self._file.write(_frame(record))
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        self._records += 1

    def _rewrite(self) -> None:
        """Replace the journal by the shortest one with the same state (atomic rename)."""
        pending_tx = {m["tx"] for m in self._pending.values() if m["tx"] is not None}
        live_tx = pending_tx | (set(self._tx_ids) - self._finished)
        records: list[Mapping[str, Any]] = [{"op": "head", "next_seq": self._next_seq, "next_tx": self._next_tx}]
        records += [{"op": "txid", "tx": tx, "id": real} for tx, real in sorted(self._tx_ids.items())
                    if tx in live_tx]
        records += [{"op": "add", "seq": seq, "action": m["action"], "payload": m["payload"], "tx": m["tx"]}
                    for seq, m in self._pending.items()]
        self._tx_ids = {tx: real for tx, real in self._tx_ids.items() if tx in live_tx}
        self._finished &= set(self._tx_ids)
        write_atomically(self.path, b"".join(_frame(r) for r in records))
        if self._file is not None:
            self._file.close()
        self._records = len(records)
        if self._file is not None:
            self._file = open(self.path, "ab")  # noqa: SIM115 - the renamed-over file needs a new handle

    def _maybe_compact(self) -> None:
        if self._records > 64 and self._records > 4 * (len(self._pending) + len(self._tx_ids)):
            self._rewrite()

    # --- the API -------------------------------------------------------------------------------------------------

    def new_local_tx(self) -> int:
        """A key for a transaction whose id the central system has not given yet; unique across restarts once a
        message was appended under it."""
        key = self._next_tx
        self._next_tx += 1
        return key

    def append(self, action: str, payload: Mapping[str, Any], *, local_tx: int | None = None) -> int:
        """Queue a message durably; returns its ``seq``. A StartTransaction needs ``local_tx``; a Stop or
        MeterValues under ``local_tx`` gets its ``transactionId`` filled in when it is handed out."""
        if action not in ACTIONS:
            raise ValueError(f"{action} is not a transaction-related message ({', '.join(sorted(ACTIONS))})")
        if action == START and local_tx is None:
            raise ValueError("a StartTransaction needs a local transaction key (new_local_tx())")
        body = dict(payload)
        json.dumps(body)  # refuse what cannot be stored before anything is written
        if len(self._pending) >= self.max_messages:
            self._make_room()
        seq = self._next_seq
        self._write({"op": "add", "seq": seq, "action": action, "payload": body, "tx": local_tx})
        self._pending[seq] = {"action": action, "payload": body, "tx": local_tx}
        self._next_seq = seq + 1
        if local_tx is not None:
            self._next_tx = max(self._next_tx, local_tx + 1)
        return seq

    def _make_room(self) -> None:
        head = next(iter(self._pending), None)
        victim = next((seq for seq, m in self._pending.items() if m["action"] == METER_VALUES and seq != head), None)
        if victim is None:
            raise OutboxFull(f"{len(self._pending)} transaction messages are waiting for the central system")
        self._write({"op": "done", "seq": victim})
        self._forget(self._pending.pop(victim))
        self.dropped += 1

    def _message(self, seq: int, m: Mapping[str, Any]) -> QueuedMessage:
        payload = dict(m["payload"])
        if m["tx"] is not None and m["action"] != START:
            payload["transactionId"] = self._tx_ids.get(m["tx"], NO_TRANSACTION_ID)
        return QueuedMessage(seq, m["action"], payload, m["tx"])

    def peek(self) -> QueuedMessage | None:
        """The oldest message not yet delivered, or None."""
        for seq, m in self._pending.items():
            return self._message(seq, m)
        return None

    def mark_delivered(self, seq: int, *, transaction_id: int | None = None) -> bool:
        """The central system answered message ``seq`` (or it was given up after TransactionMessageAttempts).

        For a StartTransaction, pass the ``transactionId`` from its .conf (or leave it out when giving up, so
        the transaction's later messages carry -1). Returns False if ``seq`` was not pending (already marked, or
        dropped), which changes nothing.
        """
        m = self._pending.get(seq)
        if m is None:
            return False
        record: dict[str, Any] = {"op": "done", "seq": seq}
        learnt = m["action"] == START and transaction_id is not None
        if learnt:
            record.update(tx=m["tx"], id=transaction_id)
        self._write(record)
        self._forget(self._pending.pop(seq))
        if learnt:
            self._tx_ids[m["tx"]] = record["id"]
        self._maybe_compact()
        return True

    def patch_transaction_id(self, local_tx: int, transaction_id: int) -> None:
        """Record the central system's id for a local key by other means (e.g. a StartTransaction that was sent
        live while messages under the key were queued)."""
        self._write({"op": "txid", "tx": local_tx, "id": transaction_id})
        self._tx_ids[local_tx] = transaction_id

    def transaction_id(self, local_tx: int) -> int | None:
        return self._tx_ids.get(local_tx)

    def pending(self) -> list[QueuedMessage]:
        """Every pending message in order (for status pages and tests); ids patched as in ``peek``."""
        return [self._message(seq, m) for seq, m in self._pending.items()]

    def __len__(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
