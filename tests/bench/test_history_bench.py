"""How big the history gets and what it costs: days of a site filled in virtual time through the production recorder
and store (``support.history.fill``), a batch every 30 s and a prune every hour as the gateway does.

Prints its figures (``POWERSHARE_BENCH=1 python -m pytest tests/bench/test_history_bench.py -q -s``); asserts only
what must hold whatever the machine: the size stops growing once the retention is reached.

A snapshot every 10 s: one sample per 10 s bucket writes the same rows as the gateway's one a second (the recorder's
cost per snapshot is measured on its own, at the real rate). Cars come a few times a day to each unit and stay one
to eight hours; a setting changes and a unit drops out every half hour or so.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from pathlib import Path

import pytest
from support.history import T0, Fleet, fill

from gateway.faces.web.exports import events_csv, history_csv, sessions_csv
from gateway.runtime.history.recorder import DAY_S, SITE, TIERS, VIEWS, Recorder
from gateway.runtime.history.store import KEEP_LOG_S, EventQuery, HistoryStore, SessionQuery

DAYS = float(os.environ.get("POWERSHARE_HISTORY_DAYS", "9"))
"""Past eight, the 1-minute tier's retention, the current per phase stops growing."""


def _ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1e3


def _timed(call: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()  # type: ignore[operator]
    return time.perf_counter() - start, result


@pytest.mark.parametrize("chargers", [6, 250])
def test_history_size_and_cost(tmp_path: Path, chargers: int) -> None:
    path = tmp_path / "history.sqlite3"
    fleet = Fleet(chargers, per_circuit=50)
    sizes: dict[float, int] = {}
    marks = [d for d in (1.0, 7.0, 8.0, 8.5) if d < DAYS]
    report = fill(path, fleet, DAYS, every_s=10.0, sizes_at_days=marks, sizes=sizes)
    series = 1 + (chargers + 49) // 50

    db = sqlite3.connect(path)
    try:
        rows = {name: db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] for name in ("points", "sessions",
                                                                                           "events")}
        tables = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        free = db.execute("PRAGMA freelist_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    end = T0 + DAYS * DAY_S

    open_s, store = _timed(lambda: HistoryStore(path))
    assert isinstance(store, HistoryStore)
    try:
        queries = {}
        for name, view in VIEWS.items():
            queries[f"chart {name}"] = _timed(lambda v=view: store.points([], v.tier, SITE, end - v.span_s, end,
                                                                           v.step_s))[0]
        step = TIERS[VIEWS["24h"].tier].step_s
        fine = TIERS[0].step_s
        queries["CSV 24h (10 s)"] = _timed(lambda: history_csv(store.points([], 0, SITE, end - DAY_S, end, fine)))[0]
        queries["CSV 7d (1 min)"] = _timed(lambda: history_csv(store.points([], 1, SITE, end - 7 * DAY_S, end,
                                                                            step)))[0]
        queries["sessions page"] = _timed(lambda: store.sessions([], SessionQuery(start_s=end - 7 * DAY_S)))[0]
        queries["sessions CSV 7d"] = _timed(lambda: sessions_csv(store.sessions(
            [], SessionQuery(start_s=end - 7 * DAY_S, limit=100_000, oldest_first=True))[1]))[0]
        queries["events 200"] = _timed(lambda: store.events([], EventQuery()))[0]
        queries["events CSV"] = _timed(lambda: events_csv(store.events([], EventQuery(limit=100_000))))[0]
    finally:
        store.close()

    recorder = Recorder()
    snapshots = [s for s, _ in Fleet(chargers, per_circuit=50, seed=2).statuses(T0, T0 + 600, 1.0)]
    observe_s, _ = _timed(lambda: [recorder.observe(s) for s in snapshots])

    days = min(DAYS, KEEP_LOG_S / DAY_S)
    log_bytes = tables.get("sessions", 0) + tables.get("sessions_by_start", 0) + tables.get("events", 0) \
        + tables.get("events_by_time", 0) + tables.get("sqlite_autoindex_sessions_1", 0)
    mib = 1024 * 1024
    print(f"\n{chargers} chargers, {series} series (the site and {series - 1} circuit(s)), {DAYS:g} days in "
          "virtual time:")
    for day, size in sorted(sizes.items()):
        print(f"  database after {day:g} days: {size / mib:.2f} MiB")
    print(f"  database after {DAYS:g} days: {path.stat().st_size / mib:.2f} MiB ({free / mib:.2f} MiB of it free "
          f"pages that new rows reuse), and a WAL file of at most {report.wal_bytes / mib:.2f} MiB while running")
    print(f"  rows: {rows}; pages by table: " + ", ".join(f"{k} {v / mib:.2f} MiB" for k, v in sorted(tables.items())))
    print(f"  sessions and events at their retention ({KEEP_LOG_S // DAY_S} days): about "
          f"{log_bytes / days * KEEP_LOG_S / DAY_S / mib:.1f} MiB")
    print(f"  a batch (30 s): median {_ms(report.write_s, 0.5):.2f} ms, p95 {_ms(report.write_s, 0.95):.2f} ms, "
          f"max {_ms(report.write_s, 1.0):.1f} ms ({report.batches} batches, hourly prunes included)")
    print(f"  the recorder: {observe_s / len(snapshots) * 1e6:.0f} µs a snapshot")
    print(f"  opening the full file (quick_check): {open_s * 1e3:.0f} ms")
    print("  reads: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in queries.items()))
    if 8.5 in sizes:
        assert path.stat().st_size < sizes[8.5] * 1.05, "past the retention, the history no longer grows (much)"
    assert statistics.median(report.write_s) > 0
