"""The OCPP client's durable state in one embedded database: documents (configuration changes, sessions,
availability, the authorisation cache, charging profiles) and the outbox of transaction messages.

One store, so that one event is one transaction: a transaction that starts is recorded in the sessions and its
StartTransaction enters the outbox together, or neither happens. A power cut between the two can no longer lose the
message (the sessions say the transaction runs, the outbox never got its StartTransaction, and the later
MeterValues go out with transactionId -1).

sqlite3 from the standard library, in WAL mode with ``synchronous=FULL``: a transaction that committed survives a
crash or a power cut, one that did not leaves no trace. ``transaction()`` nests: the outermost one commits, so a
caller can group several writes (the station's save and the outbox's append) into one event.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.site.store import StoreError, set_aside_database

log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS documents (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, action TEXT NOT NULL, payload TEXT NOT NULL,"
    " tx INTEGER)",
    "CREATE TABLE IF NOT EXISTS transaction_ids (tx INTEGER PRIMARY KEY, id INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def open_or_set_aside(path: Path) -> Ledger:
    """The ledger at ``path``; one that cannot be opened (not a database, damaged) is moved aside as
    ``NAME.corrupt-<n>`` (with its WAL files), logged, and a new one is started: power sharing never waits for it."""
    try:
        return Ledger(path)
    except StoreError as exc:
        aside = set_aside_database(path)
        log.error("%s; kept as %s, starting from the site file", exc, aside)
        return Ledger(path)


class Ledger:
    """One sqlite database file; one owner (the OCPP client's event loop thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._depth = 0
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self.transaction():
                for statement in SCHEMA:
                    self._db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"{self.path} is closed")
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside commits together when the outermost ``transaction`` ends, or not at all."""
        db = self._connection()
        depth = self._depth
        if depth == 0:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
        self._depth = depth + 1
        try:
            yield
        except BaseException:
            self._depth = depth
            if depth == 0:
                db.execute("ROLLBACK")
            raise
        self._depth = depth
        if depth == 0:
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: {exc}") from exc

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def document(self, name: str) -> str | None:
        rows = self.execute("SELECT body FROM documents WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def put_document(self, name: str, body: str) -> None:
        with self.transaction():
            self.execute("INSERT OR REPLACE INTO documents (name, body) VALUES (?, ?)", (name, body))

    def counter(self, name: str, default: int) -> int:
        rows = self.execute("SELECT value FROM counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else default

    def put_counter(self, name: str, value: int) -> None:
        with self.transaction():
            self.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (name, value))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
