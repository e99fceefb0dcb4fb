"""The history's recorder: sessions, buckets and the live chart from snapshots alone, on the snapshots' clock."""

from __future__ import annotations

import itertools

import pytest
from support.history import T0, status, unit

from drivers.model import Iec61851State
from gateway.runtime.history.recorder import (
    COARSE,
    FINE,
    RECENT_POINTS,
    RESUME_GAP_S,
    SITE,
    TIERS,
    VIEWS,
    Recorder,
    Session,
)
from gateway.runtime.read_model import CircuitStatus, Event

A, B, C, E = Iec61851State.A, Iec61851State.B, Iec61851State.C, Iec61851State.E
START = T0 - T0 % 60  # a whole minute, so buckets line up with the samples


def test_samples_become_buckets_of_each_tier_with_mean_peak_and_lowest_limit() -> None:
    recorder = Recorder()
    for s in range(130):  # 2 min 10 s, a sample a second
        drawn = 30.0 if s % 10 == 9 else 10.0  # one peak per 10 s
        limit = (48.0, 48.0, 20.0) if s == 65 else (48.0, 48.0, 48.0)
        board = CircuitStatus("board-1", (32.0, 32.0, 32.0), (5.0, 6.0, 7.0))
        recorder.observe(status(START + s, [unit("cp1", C, current_a=drawn)], limit_a=limit, circuits=[board]))
    batch = recorder.take()
    fine = [p for p in batch.points if p.tier == FINE and p.series == SITE]
    coarse = [p for p in batch.points if p.tier == COARSE and p.series == SITE]
    assert [p.time_s - START for p in fine] == list(range(0, 120, 10)), "the bucket in progress is not taken"
    assert [p.time_s - START for p in coarse] == [0, 60]
    assert all(p.samples == 10 for p in fine) and coarse[0].samples == 60
    first = fine[0].point
    assert first.mean_a == pytest.approx((12.0, 12.0, 12.0)) and first.max_a == (30.0, 30.0, 30.0)
    assert fine[6].point.limit_a == (48.0, 48.0, 20.0) and fine[5].point.limit_a == (48.0, 48.0, 48.0)
    assert coarse[1].point.limit_a == (48.0, 48.0, 20.0), "the lowest limit of the minute"
    boards = [p for p in batch.points if p.series == "board-1"]
    assert len(boards) == len(fine) + len(coarse) and boards[0].point.mean_a == pytest.approx((5.0, 6.0, 7.0))

    assert not recorder.take().points, "taken once"
    final = recorder.take(final=True)
    assert {(p.tier, p.series, p.time_s - START, p.samples) for p in final.points} == {
        (FINE, SITE, 120, 10), (COARSE, SITE, 120, 10), (FINE, "board-1", 120, 10), (COARSE, "board-1", 120, 10)}


def test_the_ranges_keep_the_chart_small_and_the_tiers_cover_them() -> None:
    for name, view in VIEWS.items():
        tier = TIERS[view.tier]
        assert view.step_s % tier.step_s == 0, name
        assert view.span_s / view.step_s <= 720, name
        assert tier.keep_s >= view.span_s, f"{name}: the tier it reads is kept long enough"


def test_the_live_chart_keeps_ten_minutes_a_point_a_second() -> None:
    recorder = Recorder()
    for tenth in range(20 * 60 * 10):  # 20 minutes of snapshots every 0.1 s
        recorder.observe(status(START + tenth / 10, [unit("cp1", C, current_a=tenth / 1000)]))
    points = recorder.recent(SITE)
    assert len(points) == RECENT_POINTS
    assert [round(b.time_s - a.time_s, 6) for a, b in itertools.pairwise(points)] == [1.0] * 599
    assert points[-1].time_s > START + 20 * 60 - 1.1
    assert recorder.recent("board-9") == []


def test_a_session_runs_from_plug_in_to_unplug_with_its_energy_and_id_tag() -> None:
    recorder = Recorder()
    timeline = [(0, A, 0, None), (100, B, 0, None), (110, C, 500, None), (200, C, 2_000, "RFID-1"),
                (250, C, 2_100, "RFID-2"), (300, E, 0, None), (310, None, 0, None), (400, C, 3_000, "RFID-1"),
                (500, A, 0, None), (600, A, 0, None)]
    batches = []
    for t, state, energy, tag in timeline:
        recorder.observe(status(START + t, [unit("cp1", state, energy_wh=energy, id_tag=tag)]))
        batches.append(recorder.take())
    rows = [s for b in batches for s in b.sessions]
    assert rows[0] == Session("cp1", START + 100, None, 0.0, None, START + 100)
    assert rows[-1] == Session("cp1", START + 100, START + 500, 3_000.0, "RFID-1", START + 400), \
        "a fault or silence in between does not end it; the first idTag stays"
    assert [len(b.sessions) for b in batches] == [0, 1, 1, 1, 1, 0, 0, 1, 1, 0], \
        "a batch carries the sessions that changed"


def test_a_restart_resumes_a_running_session_or_ends_it_where_it_was_last_seen() -> None:
    last = START + 1_000
    stored = [Session("cp1", START, None, 5_000.0, "RFID-1", last),  # car still there: own count restarts
              Session("cp2", START, None, 5_000.0, None, last),  # car still there: charger's counter goes on
              Session("cp3", START, None, 4_000.0, None, last),  # car left while the gateway was off
              Session("cp4", START, None, 3_000.0, None, last),  # silent at first, then plugged
              Session("gone", START, None, 1_000.0, None, last),  # no longer on the site
              Session("late", START, None, 1_000.0, None, last - RESUME_GAP_S)]  # plugged, but too long ago
    recorder = Recorder()
    recorder.resume(stored)
    now = last + 60
    recorder.observe(status(now, [unit("cp1", C, energy_wh=100), unit("cp2", C, energy_wh=5_300),
                                  unit("cp3", A), unit("cp4", None), unit("late", C, energy_wh=10)]))
    recorder.observe(status(now + 10, [unit("cp4", C, energy_wh=0)]))
    rows = {(s.unit, s.start_s): s for s in recorder.take().sessions}
    assert rows["cp1", START] == Session("cp1", START, None, 5_100.0, "RFID-1", now)
    assert rows["cp2", START] == Session("cp2", START, None, 5_300.0, None, now)
    assert rows["cp3", START].end_s == last
    assert rows["cp4", START].end_s is None and rows["cp4", START].energy_wh == 3_000.0
    assert rows["gone", START].end_s == last
    assert rows["late", START].end_s == last - RESUME_GAP_S and rows["late", now].end_s is None


def test_events_pass_through_and_peek_takes_nothing() -> None:
    recorder = Recorder()
    recorder.event(Event(START, "setting", "network limit 20 A", "web installer@10.0.0.7"))
    recorder.observe(status(START + 1, [unit("cp1", B)]))
    recorder.observe(status(START + 12, [unit("cp1", B)]))
    peeked = recorder.peek()
    assert [e.text for e in peeked.events] == ["network limit 20 A"]
    assert {(p.tier, p.time_s - START) for p in peeked.points if p.series == SITE} == {
        (FINE, 0), (FINE, 10), (COARSE, 0)}, "the buckets in progress too"
    taken = recorder.take()
    assert taken.events == peeked.events and taken.sessions == peeked.sessions
    assert not recorder.peek().events
