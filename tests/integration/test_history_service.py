"""The history in the running gateway's shell: one writer commits a batch per interval, a damaged file is set
aside and a new one started (at start or while running), a database that cannot be written keeps its batches until
it can, and a clean stop writes everything. Real sqlite files; snapshots published by the test on its own clock."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clock import ManualClock
from support.history import T0, Feed, Fleet, fill, status, unit

from drivers.model import Iec61851State
from gateway.runtime.history.recorder import DAY_S, SITE, VIEWS
from gateway.runtime.history.service import HISTORY_FILE, History
from gateway.runtime.history.store import EventQuery, HistoryStore, SessionQuery
from gateway.runtime.read_model import Event
from gateway.runtime.tasks import TaskSupervisor

C = Iec61851State.C
START = T0 - T0 % 60


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    yield Feed()


def committed(path: Path) -> tuple[list[str], int]:
    """What another reader of the file sees: the events' texts and the number of sessions."""
    store = HistoryStore(path)
    try:
        return [e.text for e in store.events([], EventQuery())], store.sessions([], SessionQuery())[0]
    finally:
        store.close()


async def test_a_batch_is_committed_per_flush_and_a_stop_writes_the_rest(tmp_path: Path, feed: Feed) -> None:
    path = tmp_path / HISTORY_FILE
    clock = ManualClock(START + 30)
    history = History(path, feed, tasks=TaskSupervisor(), flush_interval_s=3600, wall=clock)
    await history.start()
    try:
        feed.event(Event(START, "setting", "first"))
        for s in range(25):
            feed.publish(status(START + s, [unit("cp1", C, current_a=10, energy_wh=s * 10)]))
        await feed.drained()
        assert committed(path) == ([], 0), "nothing is written before the interval ends"
        await history.flush()
        assert committed(path) == (["first"], 1)
        feed.event(Event(START + 26, "setting", "second"))
        assert committed(path) == (["first"], 1), "a kill now would lose only what came since the last batch"
        assert [e.text for e in await history.events(EventQuery())] == ["first", "second"], "reads see it all"
    finally:
        await history.stop()
    assert committed(path) == (["first", "second"], 1)
    again = HistoryStore(path)
    try:
        [point] = again.points([], 0, SITE, START, START + 30, 30)
        assert point.mean_a[0] == 10.0, "the bucket in progress was written at stop"
        assert again.open_sessions()[0].energy_wh == 240.0
    finally:
        again.close()


async def test_a_file_that_is_not_a_database_is_set_aside_at_start(tmp_path: Path, feed: Feed,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b"\x00garbage" * 1000)
    history = History(path, feed, tasks=TaskSupervisor(), wall=ManualClock(START))
    with caplog.at_level(logging.ERROR, "gateway.runtime.history"):
        await history.start()
    try:
        assert (tmp_path / f"{HISTORY_FILE}.corrupt-1").read_bytes().startswith(b"\x00garbage")
        assert f"is damaged: file is not a database; kept as {HISTORY_FILE}.corrupt-1, starting a new history" \
            in caplog.text
        feed.event(Event(START, "setting", "after"))
    finally:
        await history.stop()
    assert committed(path) == (["after"], 0)


async def test_a_database_damaged_while_running_is_set_aside_and_a_new_one_started(
        tmp_path: Path, feed: Feed, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / HISTORY_FILE
    history = History(path, feed, tasks=TaskSupervisor(), flush_interval_s=3600, wall=ManualClock(START))
    await history.start()
    try:
        feed.event(Event(START, "setting", "before"))
        await history.flush()
        damage(path)
        feed.event(Event(START + 1, "setting", "after"))
        with caplog.at_level(logging.ERROR, "gateway.runtime.history"):
            await history.flush()
        assert "malformed database schema (events); kept as history.sqlite3.corrupt-1, starting a new history" \
            in caplog.text
        assert [e.text for e in await history.events(EventQuery())] == ["after"]
    finally:
        await history.stop()
    assert (tmp_path / f"{HISTORY_FILE}.corrupt-1").exists()
    assert committed(path) == (["after"], 0)


async def test_a_read_that_finds_the_database_damaged_sets_it_aside(tmp_path: Path, feed: Feed) -> None:
    path = tmp_path / HISTORY_FILE
    history = History(path, feed, tasks=TaskSupervisor(), flush_interval_s=3600, wall=ManualClock(START))
    await history.start()
    try:
        feed.event(Event(START, "setting", "before"))
        await history.flush()
        damage(path)
        assert [e.text for e in await history.events(EventQuery())] == [], "a new history, the old one set aside"
        assert (tmp_path / f"{HISTORY_FILE}.corrupt-1").exists()
    finally:
        await history.stop()


async def test_batches_wait_in_memory_while_the_database_cannot_be_written(
        tmp_path: Path, feed: Feed, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / HISTORY_FILE
    history = History(path, feed, tasks=TaskSupervisor(), flush_interval_s=3600, wall=ManualClock(START))
    await history.start()
    try:
        await history.flush()
        store = history._store  # a full disk, as sqlite sees one: no page may be added
        assert store is not None
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        for n in range(3):
            feed.event(Event(START + n, "setting", "x" * 5000 + str(n)))  # more than a page
            with caplog.at_level(logging.ERROR, "gateway.runtime.history"):
                await history.flush()
        assert caplog.text.count("history not written (kept in memory and tried again every 3600 s)") == 1
        assert "database or disk is full" in caplog.text, "the error itself, not a failed rollback after it"
        assert committed(path) == ([], 0)
        store._db.execute("PRAGMA max_page_count = 1000000")
        with caplog.at_level(logging.WARNING, "gateway.runtime.history"):
            await history.flush()
        assert "history written again" in caplog.text
        assert [e.text[-1] for e in await history.events(EventQuery())] == ["0", "1", "2"]
        assert len(committed(path)[0]) == 3, "each batch once, in order"
    finally:
        await history.stop()


def damage(path: Path) -> None:
    """What a failing card does to a database, as sqlite reports it: its schema no longer reads."""
    other = sqlite3.connect(path)
    try:
        version = other.execute("PRAGMA schema_version").fetchone()[0]
        other.execute("PRAGMA writable_schema = ON")
        other.execute("UPDATE sqlite_master SET sql = 'garbage' WHERE name = 'events'")
        other.execute(f"PRAGMA schema_version = {version + 1}")
        other.commit()
    finally:
        other.close()


async def test_each_range_is_read_at_its_step_and_never_more_points_than_its_chart_has(tmp_path: Path,
                                                                                       feed: Feed) -> None:
    path = tmp_path / HISTORY_FILE
    end = START + 8 * DAY_S
    fill(path, Fleet(2), 8 - 1 / 12, every_s=60, end_s=end - 7200, flush_s=3600)  # a minute's step is enough
    fill(path, Fleet(2), 1 / 12, every_s=10, end_s=end, flush_s=3600)  # but not for the last hour
    history = History(path, feed, tasks=TaskSupervisor(), wall=ManualClock(end + 5))
    await history.start()
    try:
        for name, view in VIEWS.items():
            points = await history.points(name)
            steps = {b.time_s - a.time_s for a, b in itertools.pairwise(points)}
            assert steps == {view.step_s}, name
            assert view.span_s // view.step_s - 1 <= len(points) <= view.span_s // view.step_s, name
            assert points[-1].time_s > end - 2 * view.step_s, f"{name} reaches the present"
        fine = await history.samples("1h")
        assert len(fine) >= 3600 // 10 - 1 and {b.time_s - a.time_s for a, b in itertools.pairwise(fine)} == {10}
        for s in range(3):
            feed.publish(status(end + s, [unit("cp1", C, current_a=7)]))
        await feed.drained()
        assert [p.mean_a[0] for p in await history.points("10m")] == [7.0, 7.0, 7.0], "the live chart, a second"
    finally:
        await history.stop()
