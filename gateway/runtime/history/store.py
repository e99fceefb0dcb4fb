"""The history on disk: one embedded sqlite database in the state directory.

WAL mode with ``synchronous=FULL``: a batch that committed survives a crash, a kill -9 and a power cut; one that
did not leaves no trace. The shell commits one batch every ``history.flush_interval_s`` (30 s), so the flash card
sees one small transaction (a few pages) and one fsync per batch whatever the site's size. NORMAL would save that
fsync but not the bytes (the kernel writes the pages within half a minute anyway), and would let a power cut take
every batch since the last checkpoint, which on a quiet site is hours; FULL bounds the loss at one batch for every
kind of stop.

Currents are stored as whole hundredths of an ampere (what the API shows), which sqlite keeps in 2 or 3 bytes
instead of 8. The schema version is the database's ``user_version``: a new file gets ``SCHEMA_VERSION``; a file
of another version (a newer release's, after a downgrade) is refused like a damaged one, and the caller sets it
aside. A later release that changes the schema migrates version by version at open.

Reads see what is not written yet: the shell passes the pending batches, which are written inside the read's
transaction and rolled back after it, so every read (paging, aggregation, counting) is one query over both.

One connection, used by one thread at a time (the shell runs every call in a worker thread, one after another).
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.runtime.history.recorder import DAY_S, TIERS, Batch, Point, Session, StoredPoint
from gateway.runtime.read_model import Event, SitePhases
from gateway.site.store import StoreError

SCHEMA_VERSION = 1
KEEP_LOG_S = 31 * DAY_S
"""Sessions and events are kept a month."""
MOST_EVENTS = 100_000
"""And at most this many events: a charger whose link flaps all day must not fill the card."""

SCHEMA = (
    "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE points (tier INTEGER NOT NULL, series INTEGER NOT NULL, t INTEGER NOT NULL, n INTEGER NOT NULL,"
    " mean1 INTEGER, mean2 INTEGER, mean3 INTEGER, max1 INTEGER, max2 INTEGER, max3 INTEGER,"
    " lim1 INTEGER, lim2 INTEGER, lim3 INTEGER, PRIMARY KEY (tier, series, t)) WITHOUT ROWID",
    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, unit TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL,"
    " energy_wh REAL NOT NULL, id_tag TEXT, last_s REAL NOT NULL, UNIQUE (unit, start_s))",
    "CREATE INDEX sessions_by_start ON sessions (start_s)",
    "CREATE TABLE events (id INTEGER PRIMARY KEY, time_s REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,"
    " origin TEXT)",
    "CREATE INDEX events_by_time ON events (time_s)",
)
_POINT_UPSERT = (
    "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tier, series, t) DO UPDATE SET "
    + ", ".join(f"mean{p} = ROUND((mean{p} * n + excluded.mean{p} * excluded.n) * 1.0 / (n + excluded.n))"
                for p in (1, 2, 3))
    + ", " + ", ".join(f"max{p} = MAX(max{p}, excluded.max{p})" for p in (1, 2, 3))
    + ", " + ", ".join(f"lim{p} = MIN(lim{p}, excluded.lim{p})" for p in (1, 2, 3))
    + ", n = n + excluded.n")
_SESSION_UPSERT = (
    "INSERT INTO sessions (unit, start_s, end_s, energy_wh, id_tag, last_s) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (unit, start_s) DO UPDATE SET end_s = excluded.end_s, energy_wh = excluded.energy_wh,"
    " id_tag = excluded.id_tag, last_s = excluded.last_s")
_SESSION_COLUMNS = "unit, start_s, end_s, energy_wh, id_tag, last_s"
_CENTI_MAX = 2 ** 40
"""Beyond any current: a value past it (or not finite) is stored as unknown."""


class HistoryDamaged(StoreError):
    """The file is not a usable history (damaged, not a database, another schema version): set it aside."""


@dataclass(frozen=True, slots=True)
class SessionQuery:
    unit: str | None = None
    start_s: float | None = None
    """Sessions that were running at or after this time."""
    end_s: float | None = None
    """Sessions that started before this time."""
    limit: int = 50
    offset: int = 0
    oldest_first: bool = False


@dataclass(frozen=True, slots=True)
class EventQuery:
    start_s: float | None = None
    end_s: float | None = None
    limit: int = 200
    """The newest ``limit`` events of the range (returned oldest first)."""


class HistoryStore:
    """The database at ``path`` (None: in memory, for a gateway without a state directory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path if path is not None else ":memory:", isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        with self._errors():
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            check = [str(row[0]) for row in self._db.execute("PRAGMA quick_check").fetchall()]
            if check != ["ok"]:
                raise HistoryDamaged(f"{self.path} is damaged: {'; '.join(check[:3])}")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version == 0:
                with self._transaction():
                    for statement in SCHEMA:
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise HistoryDamaged(f"{self.path} has history schema version {version}; this release reads "
                                     f"version {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite's errors as ``StoreError``; damage as ``HistoryDamaged``."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise HistoryDamaged(f"{self.path} is damaged: {exc}") from exc
            raise StoreError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT" if commit else "ROLLBACK")
            except BaseException:
                if self._db.in_transaction:  # sqlite rolls back by itself after some errors (a full disk)
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes --------------------------------------------------------------------------------------------------
    def write(self, batches: Sequence[Batch], prune_before_s: float | None = None) -> None:
        """``batches`` in one transaction, in their order; and, given a time, what is older than each record's
        retention before it is pruned."""
        with self._errors(), self._transaction() as db:
            for batch in batches:
                _insert(db, batch)
            if prune_before_s is not None:
                _prune(db, prune_before_s)

    def open_sessions(self) -> list[Session]:
        with self._errors(), self._transaction(commit=False) as db:
            rows = db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE end_s IS NULL").fetchall()
        return [_session(row) for row in rows]

    # -- reads ---------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self, pending: Sequence[Batch]) -> Iterator[sqlite3.Connection]:
        """A transaction that sees ``pending`` as if written, and is rolled back."""
        with self._errors(), self._transaction(commit=False) as db:
            for batch in pending:
                _insert(db, batch)
            yield db

    def points(self, pending: Sequence[Batch], tier: int, series: str, start_s: float, end_s: float,
               step_s: int) -> list[Point]:
        """``series`` in ``tier`` from ``start_s`` to ``end_s``, in steps of ``step_s`` (a multiple of the tier's
        step): each step's mean weighted by samples, its peak and its lowest limit."""
        with self._reading(pending) as db:
            rows = db.execute(
                "SELECT (t / :step) * :step AS at, SUM(n),"
                " SUM(mean1 * n), SUM(mean2 * n), SUM(mean3 * n), MAX(max1), MAX(max2), MAX(max3),"
                " MIN(lim1), MIN(lim2), MIN(lim3)"
                " FROM points WHERE tier = :tier AND series = (SELECT id FROM series WHERE name = :series)"
                " AND t >= :start AND t < :end GROUP BY at ORDER BY at",
                {"step": step_s, "tier": tier, "series": series, "start": math.floor(start_s),
                 "end": math.ceil(end_s)}).fetchall()
        return [Point(float(row[0]), _mean(row[2:5], row[1]), _amps(row[5:8]), _amps(row[8:11])) for row in rows]

    def sessions(self, pending: Sequence[Batch], query: SessionQuery) -> tuple[int, list[Session]]:
        """How many sessions match, and the page of them ``query`` asks for (newest first, unless asked)."""
        where, args = _session_filter(query)
        order = "ASC" if query.oldest_first else "DESC"
        with self._reading(pending) as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM sessions WHERE {where}", args).fetchone()[0])
            rows = db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}"
                              f" ORDER BY start_s {order}, id {order} LIMIT ? OFFSET ?",
                              [*args, query.limit, query.offset]).fetchall()
        return total, [_session(row) for row in rows]

    def events(self, pending: Sequence[Batch], query: EventQuery) -> list[Event]:
        """The newest ``query.limit`` events of the range, oldest first."""
        with self._reading(pending) as db:
            rows = db.execute(
                "SELECT time_s, kind, text, origin FROM events WHERE time_s >= ? AND time_s < ?"
                " ORDER BY time_s DESC, id DESC LIMIT ?",
                (_or(query.start_s, -math.inf), _or(query.end_s, math.inf), query.limit)).fetchall()
        return [Event(float(t), str(kind), str(text), origin) for t, kind, text, origin in reversed(rows)]

    def size_bytes(self) -> int:
        """The database's pages in use, free pages included (the WAL file aside)."""
        with self._errors(), self._lock:
            pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
            return pages * int(self._db.execute("PRAGMA page_size").fetchone()[0])


def _insert(db: sqlite3.Connection, batch: Batch) -> None:
    if batch.points:
        ids: dict[str, int] = {}
        for name in {p.series for p in batch.points}:
            db.execute("INSERT OR IGNORE INTO series (name) VALUES (?)", (name,))
            ids[name] = int(db.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0])
        db.executemany(_POINT_UPSERT, [_point_row(p, ids[p.series]) for p in batch.points])
    if batch.events:
        db.executemany("INSERT INTO events (time_s, kind, text, origin) VALUES (?, ?, ?, ?)",
                       [(e.time_s, e.kind, e.text, e.origin) for e in batch.events])
    if batch.sessions:
        db.executemany(_SESSION_UPSERT, [(s.unit, s.start_s, s.end_s, s.energy_wh, s.id_tag, s.last_s)
                                         for s in batch.sessions])


def _prune(db: sqlite3.Connection, now_s: float) -> None:
    for tier, spec in enumerate(TIERS):
        db.execute("DELETE FROM points WHERE tier = ? AND t < ?", (tier, math.floor(now_s - spec.keep_s)))
    db.execute("DELETE FROM sessions WHERE end_s < ?", (now_s - KEEP_LOG_S,))
    db.execute("DELETE FROM events WHERE time_s < ?", (now_s - KEEP_LOG_S,))
    db.execute("DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
               (MOST_EVENTS,))


def _point_row(stored: StoredPoint, series: int) -> tuple[Any, ...]:
    point = stored.point
    return (stored.tier, series, stored.time_s, stored.samples,
            *map(_centi, point.mean_a), *map(_centi, point.max_a), *map(_centi, point.limit_a))


def _centi(amps: float) -> int | None:
    if not math.isfinite(amps) or abs(amps) * 100 >= _CENTI_MAX:
        return None
    return round(amps * 100)


def _amps(values: Sequence[Any]) -> SitePhases:
    a, b, c = (v / 100 if v is not None else math.nan for v in values)
    return (a, b, c)


def _mean(sums: Sequence[Any], samples: int) -> SitePhases:
    return _amps([s / samples if s is not None else None for s in sums])


def _session(row: Sequence[Any]) -> Session:
    unit, start, end, energy, id_tag, last = row
    return Session(str(unit), float(start), float(end) if end is not None else None, float(energy), id_tag,
                   float(last))


def _session_filter(query: SessionQuery) -> tuple[str, list[Any]]:
    where = ["start_s < ?", "(end_s IS NULL OR end_s >= ?)"]
    args: list[Any] = [_or(query.end_s, math.inf), _or(query.start_s, -math.inf)]
    if query.unit is not None:
        where.append("unit = ?")
        args.append(query.unit)
    return " AND ".join(where), args


def _or(value: float | None, default: float) -> float:
    return value if value is not None else default
