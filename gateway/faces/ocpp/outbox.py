"""The persistent queue of transaction-related messages (StartTransaction, StopTransaction, sampled and
clock-aligned MeterValues) that must reach the central system in order, across offline periods and restarts
(spec §3.7, §4.8; errata §3.18).

Storage is the station's ``Ledger`` (sqlite): every change is one database transaction, committed before a call
returns, or part of the caller's larger transaction (``Ledger.transaction``) so that a session's state and its
message are stored together. A crash leaves either the whole change or none of it.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import PeerError
from gateway.faces.ocpp.ledger import Ledger

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


class Outbox:
    """A durable FIFO for one charge point, kept in the station's ledger. Not thread-safe; one owner."""

    def __init__(self, ledger: Ledger, *, max_messages: int = 10_000) -> None:
        if max_messages < 2:
            raise ValueError("max_messages must be at least 2")
        self.ledger = ledger
        self.max_messages = max_messages
        self.dropped = 0
        """MeterValues dropped since opening because the queue was full."""
        self._pending: dict[int, dict[str, Any]] = {}
        for seq, action, payload, tx in ledger.execute("SELECT seq, action, payload, tx FROM messages ORDER BY seq"):
            self._pending[int(seq)] = {"action": action, "payload": json.loads(payload),
                                       "tx": None if tx is None else int(tx)}
        self._tx_ids = {int(tx): int(real) for tx, real in ledger.execute("SELECT tx, id FROM transaction_ids")}
        self._next_seq = max([ledger.counter("next_seq", 1), *(seq + 1 for seq in self._pending)])
        self._next_tx = ledger.counter("next_tx", 1)

    def new_local_tx(self) -> int:
        """A key for a transaction whose id the central system has not given yet; unique across restarts."""
        key = self._next_tx
        self.ledger.put_counter("next_tx", key + 1)
        self._next_tx = key + 1
        return key

    def append(self, action: str, payload: Mapping[str, Any], *, local_tx: int | None = None) -> int:
        """Queue a message durably; returns its ``seq``. A StartTransaction needs ``local_tx``; a Stop or
        MeterValues under ``local_tx`` gets its ``transactionId`` filled in when it is handed out."""
        if action not in ACTIONS:
            raise ValueError(f"{action} is not a transaction-related message ({', '.join(sorted(ACTIONS))})")
        if action == START and local_tx is None:
            raise ValueError("a StartTransaction needs a local transaction key (new_local_tx())")
        body = dict(payload)
        text = json.dumps(body, separators=(",", ":"))  # refuse what cannot be stored before anything is written
        seq = self._next_seq
        with self.ledger.transaction():
            victim = self._make_room() if len(self._pending) >= self.max_messages else None
            self.ledger.execute("INSERT INTO messages (seq, action, payload, tx) VALUES (?, ?, ?, ?)",
                                (seq, action, text, local_tx))
            self.ledger.put_counter("next_seq", seq + 1)
            if local_tx is not None and local_tx >= self._next_tx:
                self.ledger.put_counter("next_tx", local_tx + 1)
        if victim is not None:
            del self._pending[victim]
            self.dropped += 1
        self._pending[seq] = {"action": action, "payload": body, "tx": local_tx}
        self._next_seq = seq + 1
        if local_tx is not None:
            self._next_tx = max(self._next_tx, local_tx + 1)
        return seq

    def _make_room(self) -> int:
        head = next(iter(self._pending), None)
        victim = next((seq for seq, m in self._pending.items() if m["action"] == METER_VALUES and seq != head), None)
        if victim is None:
            raise OutboxFull(f"{len(self._pending)} transaction messages are waiting for the central system")
        self.ledger.execute("DELETE FROM messages WHERE seq = ?", (victim,))
        return victim

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
        dropped), which changes nothing. A delivered StopTransaction forgets its transaction's id.
        """
        m = self._pending.get(seq)
        if m is None:
            return False
        tx = m["tx"]
        learnt = m["action"] == START and transaction_id is not None
        finished = m["action"] == STOP and tx is not None and not any(
            other["tx"] == tx for other_seq, other in self._pending.items() if other_seq != seq)
        with self.ledger.transaction():
            self.ledger.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            if learnt:
                self.ledger.execute("INSERT OR REPLACE INTO transaction_ids (tx, id) VALUES (?, ?)",
                                    (tx, transaction_id))
            if finished:
                self.ledger.execute("DELETE FROM transaction_ids WHERE tx = ?", (tx,))
        del self._pending[seq]
        if learnt:
            assert transaction_id is not None
            self._tx_ids[tx] = transaction_id
        if finished:
            self._tx_ids.pop(tx, None)
        return True

    def patch_transaction_id(self, local_tx: int, transaction_id: int) -> None:
        """Record the central system's id for a local key by other means (e.g. a StartTransaction that was sent
        live while messages under the key were queued)."""
        self.ledger.execute("INSERT OR REPLACE INTO transaction_ids (tx, id) VALUES (?, ?)", (local_tx, transaction_id))
        self._tx_ids[local_tx] = transaction_id

    def transaction_id(self, local_tx: int) -> int | None:
        return self._tx_ids.get(local_tx)

    def pending(self) -> list[QueuedMessage]:
        """Every pending message in order (for status pages and tests); ids patched as in ``peek``."""
        return [self._message(seq, m) for seq, m in self._pending.items()]

    def __len__(self) -> int:
        return len(self._pending)
