"""The history as the running gateway keeps it: recorded from the read model, written in batches, read by faces.

Two tasks, owned by the gateway's ``TaskSupervisor``: one follows the published snapshots into the recorder
(``gateway.runtime.history.recorder``, pure), the other, the only writer, commits what is ready every
``flush_interval_s`` in one transaction, prunes once an hour, and writes what is left at stop. Every call into the
database runs in a worker thread, one at a time (an ``asyncio.Lock``), so the control loop never waits for the
flash card.

Bounds: a kill -9 or a power cut loses what was recorded since the last commit, at most ``flush_interval_s`` of
events, session changes and current (plus the bucket in progress); a clean stop loses nothing. A database that
cannot be used is moved aside (``history.sqlite3.corrupt-<n>``) with an error in the log and a new one started,
at start or whenever a write or a read finds it damaged; one that cannot be written (a full disk) keeps the
batches in memory, up to ``MOST_UNSENT`` of them, and tries again at the next interval. Power sharing never waits
for any of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from gateway.runtime.history.recorder import RECENT, SITE, TIERS, VIEWS, Batch, Point, Recorder, Session
from gateway.runtime.history.store import EventQuery, HistoryDamaged, HistoryStore, SessionQuery
from gateway.runtime.read_model import Event, SiteStatus
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.store import StoreError, set_aside_database

log = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite3"
FLUSH_INTERVAL_S = 30.0
PRUNE_INTERVAL_S = 3_600.0
MOST_UNSENT = 120
"""Batches kept while the database cannot be written (an hour at the default interval); older ones are dropped."""
RECORD_TASK = "history record"
WRITE_TASK = "history write"

T = TypeVar("T")


class HistorySource(Protocol):
    """What the history follows: the supervisor."""

    def updates(self) -> AsyncIterator[SiteStatus]: ...

    def on_event(self, listener: Callable[[Event], None]) -> None: ...


class History:
    """The gateway's history in ``path`` (None: in memory only, for a gateway without a state directory)."""

    def __init__(self, path: Path | None, source: HistorySource, *, tasks: TaskSupervisor,
                 flush_interval_s: float = FLUSH_INTERVAL_S, wall: Callable[[], float] = time.time) -> None:
        """``wall`` (UNIX seconds) places the chart ranges and the retention; the recorded times are the
        snapshots' own."""
        self.path = path
        self._source = source
        self._tasks = tasks
        self._interval = flush_interval_s
        self._wall = wall
        self._recorder = Recorder()
        source.on_event(self._recorder.event)
        self._store: HistoryStore | None = None
        self._lock = asyncio.Lock()
        self._unsent: list[Batch] = []
        self._writing: tuple[asyncio.Future[bool], int] | None = None
        """A write in its worker thread and how many of ``_unsent`` it carries: a flush cancelled at stop leaves
        it running, and whoever comes next waits for it."""
        self._pruned_s: float | None = None
        self._failing = False
        self._dropped = 0
        self._running = False

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the database (setting a damaged one aside), resume the sessions that were running, start
        recording and writing."""
        self._store = await asyncio.to_thread(self._open)
        try:
            resumable = await asyncio.to_thread(self._store.open_sessions)
        except StoreError as exc:
            log.error("history: the sessions that were running cannot be read: %s", exc)
            resumable = []
        self._recorder.resume(resumable)
        self._tasks.start(RECORD_TASK, self._record)
        self._tasks.start(WRITE_TASK, self._write_loop)
        self._running = True

    async def stop(self) -> None:
        """Stop recording, write everything recorded (the buckets in progress too), close the database."""
        if not self._running:
            return
        self._running = False
        await self._tasks.stop(RECORD_TASK)
        await self._tasks.stop(WRITE_TASK)
        await self.flush(final=True)
        async with self._lock:
            store, self._store = self._store, None
            if store is not None:
                await asyncio.to_thread(store.close)

    def _open(self) -> HistoryStore:
        """Runs in a worker thread. A damaged file is set aside and a new one started; if none can be, the
        history is kept in memory until the gateway restarts."""
        for _ in range(2):
            if self.path is None:
                break
            try:
                return HistoryStore(self.path)
            except HistoryDamaged as exc:
                if not self._set_aside(exc):
                    break
            except StoreError as exc:
                log.error("history: %s", exc)
                break
        if self.path is not None:
            log.error("history: kept in memory only until the gateway restarts")
        return HistoryStore(None)

    def _set_aside(self, exc: StoreError) -> bool:
        assert self.path is not None  # only a file can be damaged
        try:
            aside = set_aside_database(self.path)
        except OSError as error:
            log.error("history: %s, and it cannot be set aside: %s", exc, error.strerror or error)
            return False
        log.error("history: %s; kept as %s, starting a new history", exc, aside.name)
        return True

    # -- tasks ---------------------------------------------------------------------------------------------------
    async def _record(self) -> None:
        updates = self._source.updates()
        try:
            async for status in updates:
                self._recorder.observe(status)
        finally:
            await updates.aclose()  # type: ignore[attr-defined]  # an async generator, typed as its iterator

    async def _write_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self, *, final: bool = False) -> None:
        """Commit what is ready now (``final``: everything, at stop); prune if the last prune is an hour old."""
        async with self._lock:
            await self._settle()
            batch = self._recorder.take(final=final)
            if batch:
                self._unsent.append(batch)
            if len(self._unsent) > MOST_UNSENT:
                self._dropped += len(self._unsent) - MOST_UNSENT
                del self._unsent[:-MOST_UNSENT]
            now = self._wall()
            prune = self._pruned_s is None or now - self._pruned_s >= PRUNE_INTERVAL_S
            if not self._unsent and not prune:
                return
            if prune:
                self._pruned_s = now
            batches = list(self._unsent)
            future = asyncio.get_running_loop().run_in_executor(None, self._write, batches, now if prune else None)
            self._writing = (future, len(batches))
            await self._settle()

    async def _settle(self) -> None:
        """Wait for the write in progress (shielded: a cancelled flush leaves it to finish) and account for it."""
        if self._writing is None:
            return
        future, count = self._writing
        written = await asyncio.shield(future)
        self._writing = None
        if written:
            del self._unsent[:count]

    def _write(self, batches: list[Batch], prune_before_s: float | None) -> bool:
        """Runs in a worker thread. True once written; False if not (kept for the next interval)."""
        store = self._store
        if store is None:
            return False
        try:
            try:
                store.write(batches, prune_before_s)
            except HistoryDamaged as exc:
                store.close()
                self._set_aside(exc)
                self._store = store = self._open()
                store.write(batches, prune_before_s)
        except StoreError as exc:
            if not self._failing:
                log.error("history not written (kept in memory and tried again every %g s): %s", self._interval,
                          exc)
            self._failing = True
            return False
        if self._failing or self._dropped:
            log.warning("history written again%s", f"; {self._dropped} batches were dropped meanwhile"
                        if self._dropped else "")
            self._failing, self._dropped = False, 0
        return True

    # -- reads ---------------------------------------------------------------------------------------------------
    async def _read(self, query: Callable[[HistoryStore, list[Batch]], T]) -> T:
        """``query`` over the database and everything not written yet; raises ``StoreError``."""
        async with self._lock:
            await self._settle()
            pending = [*self._unsent, self._recorder.peek()]
            return await asyncio.to_thread(self._query, query, pending)

    def _query(self, query: Callable[[HistoryStore, list[Batch]], T], pending: list[Batch]) -> T:
        """Runs in a worker thread; a damaged database is set aside and a new one started."""
        store = self._store
        if store is None:
            raise StoreError("the history is not open")
        try:
            return query(store, pending)
        except HistoryDamaged as exc:
            store.close()
            self._set_aside(exc)
            self._store = store = self._open()
            return query(store, pending)

    async def points(self, range_name: str, series: str = SITE) -> list[Point]:
        """The chart of ``series`` over a range of ``VIEWS`` (or ``RECENT``: the live chart, a point a second)."""
        if range_name == RECENT:
            return self._recorder.recent(series)
        view = VIEWS[range_name]
        now = self._wall()
        points = await self._read(lambda store, pending: store.points(
            pending, view.tier, series, now - view.span_s, now + view.step_s, view.step_s))
        return points[-(view.span_s // view.step_s):]

    async def samples(self, range_name: str, series: str = SITE) -> list[Point]:
        """Every stored bucket of a range, at its tier's own step (the CSV export)."""
        view = VIEWS[range_name]
        step = TIERS[view.tier].step_s
        now = self._wall()
        return await self._read(lambda store, pending: store.points(
            pending, view.tier, series, now - view.span_s, now + step, step))

    async def sessions(self, query: SessionQuery) -> tuple[int, list[Session]]:
        return await self._read(lambda store, pending: store.sessions(pending, query))

    async def events(self, query: EventQuery) -> list[Event]:
        return await self._read(lambda store, pending: store.events(pending, query))
