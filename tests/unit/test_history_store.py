"""The history database: tiers merged and aggregated, retention, reads over what is not written yet, damage and
the schema version. Real sqlite files; the time is always passed in."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.history import T0

from gateway.runtime.history import store as store_module
from gateway.runtime.history.recorder import COARSE, DAY_S, FINE, SITE, TIERS, Batch, Point, Session, StoredPoint
from gateway.runtime.history.store import (
    KEEP_LOG_S,
    SCHEMA_VERSION,
    EventQuery,
    HistoryDamaged,
    HistoryStore,
    SessionQuery,
)
from gateway.runtime.read_model import Event

START = int(T0 - T0 % 900)


def point(tier: int, t: int, mean: float, peak: float | None = None, limit: float = 48.0, samples: int = 10,
          series: str = SITE) -> StoredPoint:
    top = peak if peak is not None else mean
    return StoredPoint(tier, series, t, samples, Point(t, (mean, mean, mean / 2), (top, top, top), (limit,) * 3))


def session(unit: str, start: float, end: float | None, energy: float = 1_000.0, tag: str | None = None) -> Session:
    return Session(unit, start, end, energy, tag, end if end is not None else start)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    opened = HistoryStore(tmp_path / "history.sqlite3")
    yield opened
    opened.close()


def test_points_are_read_back_at_a_coarser_step_weighted_by_samples(store: HistoryStore) -> None:
    store.write([Batch(points=[point(FINE, START + 10 * i, mean=float(i), peak=2.0 * i, samples=1 + i % 2)
                               for i in range(12)])])
    raw = store.points([], FINE, SITE, START, START + 120, 10)
    assert [p.time_s for p in raw] == [START + 10 * i for i in range(12)]
    assert raw[5].mean_a == (5.0, 5.0, 2.5) and raw[5].max_a == (10.0, 10.0, 10.0)
    minute = store.points([], FINE, SITE, START, START + 120, 60)
    # samples 1,2,1,2,1,2 for means 0..5: (0 + 2 + 2 + 6 + 4 + 10) / 9
    assert [p.time_s for p in minute] == [START, START + 60]
    assert minute[0].mean_a[0] == pytest.approx(24 / 9, abs=0.01) and minute[0].max_a[0] == 10.0
    assert store.points([], FINE, "board-1", START, START + 120, 10) == []
    assert store.points([], COARSE, SITE, START, START + 120, 60) == []


def test_currents_are_kept_to_the_hundredth_of_an_ampere(store: HistoryStore) -> None:
    store.write([Batch(points=[point(FINE, START, mean=13.333333, peak=31.996, limit=float("inf"))])])
    [read] = store.points([], FINE, SITE, START, START + 10, 10)
    assert read.mean_a[0] == 13.33 and read.max_a[0] == 32.0
    assert all(v != v for v in read.limit_a), "an unknown limit stays unknown (NaN), not 0 A"


def test_two_parts_of_a_bucket_merge_into_one(store: HistoryStore) -> None:
    """The bucket in progress at a stop is written, and its rest after the restart: one point with the mean of
    all the samples, the higher peak and the lower limit."""
    store.write([Batch(points=[point(FINE, START, mean=10.0, peak=12.0, limit=48.0, samples=3)])])
    store.write([Batch(points=[point(FINE, START, mean=20.0, peak=25.0, limit=40.0, samples=7)])])
    [merged] = store.points([], FINE, SITE, START, START + 10, 10)
    assert merged.mean_a[0] == 17.0 and merged.max_a[0] == 25.0 and merged.limit_a[0] == 40.0


def test_reads_see_what_is_not_written_yet_and_leave_it_unwritten(tmp_path: Path, store: HistoryStore) -> None:
    store.write([Batch(points=[point(FINE, START, 10.0)], events=[Event(START, "setting", "written")],
                       sessions=[session("cp1", START, None, energy=100.0)])])
    pending = [Batch(points=[point(FINE, START + 10, 20.0)], events=[Event(START + 5, "setting", "pending")],
                     sessions=[session("cp1", START, START + 9, energy=900.0)])]
    assert [p.mean_a[0] for p in store.points(pending, FINE, SITE, START, START + 20, 10)] == [10.0, 20.0]
    assert [e.text for e in store.events(pending, EventQuery())] == ["written", "pending"]
    assert store.sessions(pending, SessionQuery()) == (1, [session("cp1", START, START + 9, energy=900.0)])
    store.close()
    again = HistoryStore(tmp_path / "history.sqlite3")
    try:
        assert [e.text for e in again.events([], EventQuery())] == ["written"]
        assert again.open_sessions() == [session("cp1", START, None, energy=100.0)]
    finally:
        again.close()


def test_sessions_are_filtered_by_unit_and_time_and_paged(store: HistoryStore) -> None:
    hour = 3_600
    rows = [session(f"cp{n % 3 + 1}", START + n * hour, START + n * hour + 1_800, tag=f"T{n}") for n in range(10)]
    rows.append(session("cp1", START + 10 * hour, None))
    store.write([Batch(sessions=rows)])
    total, page = store.sessions([], SessionQuery(limit=4))
    assert total == 11 and [s.start_s for s in page] == [START + n * hour for n in (10, 9, 8, 7)], "newest first"
    total, page = store.sessions([], SessionQuery(limit=4, offset=8))
    assert total == 11 and [s.id_tag for s in page] == ["T2", "T1", "T0"]
    total, page = store.sessions([], SessionQuery(unit="cp1", oldest_first=True))
    assert total == 5 and [s.start_s for s in page] == [START + n * hour for n in (0, 3, 6, 9, 10)]
    # running at or after 03:45 and started before 06:00: 04:00, 05:00, and 03:00 ran until 03:30 (not)
    total, page = store.sessions([], SessionQuery(start_s=START + 3.75 * hour, end_s=START + 6 * hour))
    assert [s.start_s for s in page] == [START + 5 * hour, START + 4 * hour] and total == 2
    total, page = store.sessions([], SessionQuery(start_s=START + 20 * hour))
    assert total == 1 and page[0].end_s is None, "a running session belongs to every range after its start"
    assert store.sessions([], SessionQuery(unit="cp9")) == (0, [])


def test_events_are_the_newest_of_their_range_oldest_first(store: HistoryStore) -> None:
    store.write([Batch(events=[Event(START + n, "setting", f"e{n}", "bms 10.0.0.5:50123") for n in range(10)])])
    assert [e.text for e in store.events([], EventQuery(limit=3))] == ["e7", "e8", "e9"]
    assert [e.text for e in store.events([], EventQuery(start_s=START + 2, end_s=START + 5))] == ["e2", "e3", "e4"]
    assert store.events([], EventQuery(limit=1))[0].origin == "bms 10.0.0.5:50123"


def test_pruning_keeps_each_record_for_its_time(store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = START + 40 * DAY_S
    fine_keep, coarse_keep = TIERS[FINE].keep_s, TIERS[COARSE].keep_s
    store.write([Batch(
        points=[point(FINE, now - fine_keep - 10, 1.0), point(FINE, now - fine_keep + 10, 2.0),
                point(COARSE, now - coarse_keep - 60, 3.0), point(COARSE, now - coarse_keep + 60, 4.0)],
        events=[Event(now - KEEP_LOG_S - 1, "setting", "old"), Event(now - KEEP_LOG_S + 1, "setting", "kept")],
        sessions=[session("cp1", now - KEEP_LOG_S - 100, now - KEEP_LOG_S - 1),
                  session("cp2", now - KEEP_LOG_S - 100, now - KEEP_LOG_S + 1),
                  session("cp3", now - KEEP_LOG_S - 100, None)])])
    store.write([], prune_before_s=now)
    everything = now - 60 * DAY_S
    assert [p.mean_a[0] for p in store.points([], FINE, SITE, everything, now, 10)] == [2.0]
    assert [p.mean_a[0] for p in store.points([], COARSE, SITE, everything, now, 60)] == [4.0]
    assert [e.text for e in store.events([], EventQuery())] == ["kept"]
    assert sorted(s.unit for s in store.sessions([], SessionQuery())[1]) == ["cp2", "cp3"], \
        "a session still running is never pruned"

    monkeypatch.setattr(store_module, "MOST_EVENTS", 3)
    store.write([Batch(events=[Event(now + n, "unit-unavailable", f"flap {n}") for n in range(10)])], now)
    assert [e.text for e in store.events([], EventQuery())] == ["flap 7", "flap 8", "flap 9"]


def test_a_new_file_gets_the_schema_version_and_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    HistoryStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(HistoryDamaged, match="schema version 2; this release reads version 1"):
        HistoryStore(path)


def test_a_file_that_is_not_a_database_or_is_damaged_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 500)
    with pytest.raises(HistoryDamaged, match=r"garbage\.sqlite3 is damaged"):
        HistoryStore(garbage)

    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    store.write([Batch(events=[Event(START + n, "setting", "x" * 200) for n in range(2_000)])])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[5 * page:5 * page + 200] = b"\xff" * 200  # a leaf of the events table
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryDamaged, match="is damaged"):
        HistoryStore(path)
