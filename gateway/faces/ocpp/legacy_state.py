"""Readers of the OCPP client's previous state files, kept only to move them into the ledger once.

Before the ledger the state directory held ``charge-point.json`` (configuration changes, sessions, availability,
the authorisation cache), ``profiles.json`` (installed charging profiles) and ``outbox.journal`` (the queue of
transaction messages: one ``<crc32 hex> <json>\\n`` record per line). ``migrate`` copies what they hold into the
ledger in one transaction, then renames each to ``NAME.migrated``; a crash before the rename repeats nothing,
because a ledger that already holds the station document is never migrated into again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.faces.ocpp.ledger import Ledger

log = logging.getLogger(__name__)

STATION_DOCUMENT = "station"
PROFILES_DOCUMENT = "profiles"
STATE_FILE = "charge-point.json"
PROFILES_FILE = "profiles.json"
JOURNAL_FILE = "outbox.journal"


@dataclass
class Journal:
    """What an outbox journal held: the pending messages in order, the known transaction ids, the counters."""

    pending: dict[int, tuple[str, dict[str, Any], int | None]] = field(default_factory=dict)
    tx_ids: dict[int, int] = field(default_factory=dict)
    next_seq: int = 1
    next_tx: int = 1
    damaged: int = 0


def _record(line: bytes) -> dict[str, Any] | None:
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


def read_journal(data: bytes) -> Journal:
    """Fold the journal's records; a damaged one (a torn last write) is counted and skipped."""
    journal = Journal()
    for line in data.splitlines(keepends=True):
        record = _record(line)
        try:
            if record is None:
                raise ValueError
            op = record["op"]
            if op == "head":
                journal.next_seq = max(journal.next_seq, int(record["next_seq"]))
                journal.next_tx = max(journal.next_tx, int(record["next_tx"]))
            elif op == "add":
                seq, tx = int(record["seq"]), record.get("tx")
                if not isinstance(record["action"], str) or not isinstance(record["payload"], dict):
                    raise ValueError
                journal.pending[seq] = (record["action"], record["payload"], None if tx is None else int(tx))
                journal.next_seq = max(journal.next_seq, seq + 1)
                if tx is not None:
                    journal.next_tx = max(journal.next_tx, int(tx) + 1)
            elif op == "done":
                journal.pending.pop(int(record["seq"]), None)
                if record.get("tx") is not None:
                    journal.tx_ids[int(record["tx"])] = int(record["id"])
            elif op == "txid":
                journal.tx_ids[int(record["tx"])] = int(record["id"])
            else:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            journal.damaged += 1
    return journal


def migrate(state_dir: Path, ledger: Ledger) -> bool:
    """Move the previous files' state into ``ledger`` (once); True if anything was migrated."""
    files = [state_dir / name for name in (STATE_FILE, PROFILES_FILE, JOURNAL_FILE)]
    present = [path for path in files if path.exists()]
    if not present:
        return False
    if ledger.document(STATION_DOCUMENT) is None:
        _copy(state_dir, ledger)
        log.info("OCPP state moved from %s into %s", ", ".join(p.name for p in present), ledger.path.name)
    for path in present:
        path.replace(path.with_name(path.name + ".migrated"))
    return True


def _copy(state_dir: Path, ledger: Ledger) -> None:
    document: Any = {}
    try:
        document = json.loads((state_dir / STATE_FILE).read_bytes())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        log.error("%s is unreadable (%s); starting from the site file", state_dir / STATE_FILE, exc)
    profiles: str | None = None
    with contextlib.suppress(FileNotFoundError):
        profiles = (state_dir / PROFILES_FILE).read_text(encoding="utf-8")
    try:
        journal = read_journal((state_dir / JOURNAL_FILE).read_bytes())
    except FileNotFoundError:
        journal = Journal()
    if journal.damaged:
        log.warning("%s: %d damaged record(s) discarded", state_dir / JOURNAL_FILE, journal.damaged)
    with ledger.transaction():
        ledger.execute("INSERT OR REPLACE INTO documents (name, body) VALUES (?, ?)",
                       (STATION_DOCUMENT, json.dumps(document if isinstance(document, dict) else {})))
        if profiles is not None:
            ledger.execute("INSERT OR REPLACE INTO documents (name, body) VALUES (?, ?)", (PROFILES_DOCUMENT, profiles))
        for seq, (action, payload, tx) in journal.pending.items():
            ledger.execute("INSERT INTO messages (seq, action, payload, tx) VALUES (?, ?, ?, ?)",
                           (seq, action, json.dumps(payload, separators=(",", ":")), tx))
        for tx, real in journal.tx_ids.items():
            ledger.execute("INSERT OR REPLACE INTO transaction_ids (tx, id) VALUES (?, ?)", (tx, real))
        ledger.put_counter("next_seq", journal.next_seq)
        ledger.put_counter("next_tx", max(journal.next_tx, _next_key(document)))


def _next_key(document: object) -> int:
    """A local transaction key above every one the sessions hold (a journal may not mention them any more)."""
    keys = [0]
    sessions = document.get("sessions") if isinstance(document, dict) else None
    for session in sessions.values() if isinstance(sessions, dict) else ():
        running = session.get("running") if isinstance(session, dict) else None
        if isinstance(running, dict) and isinstance(running.get("local_tx"), int):
            keys.append(running["local_tx"])
    return max(keys) + 1
