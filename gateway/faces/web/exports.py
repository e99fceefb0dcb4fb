"""The history as CSV files for a spreadsheet: current per phase, sessions, events.

RFC 4180: a header row, comma-separated, fields quoted where they hold a comma, a quote or a line break (quotes
doubled), CRLF line ends, UTF-8. Times are ISO 8601 in UTC to the second (``2026-05-01T08:00:00Z``), currents in
amperes to the hundredth, energy in kWh to the watt-hour; an unknown value is an empty field. A text field that a
spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: an idTag
or a name comes from a device or a person) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from gateway.runtime.history.recorder import Point, Session
from gateway.runtime.read_model import Event

HISTORY_COLUMNS = ("time_utc", "l1_a", "l2_a", "l3_a", "l1_max_a", "l2_max_a", "l3_max_a",
                   "limit_l1_a", "limit_l2_a", "limit_l3_a")
SESSION_COLUMNS = ("unit", "start_utc", "end_utc", "energy_kwh", "id_tag")
EVENT_COLUMNS = ("time_utc", "kind", "text", "origin")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def history_csv(points: Iterable[Point]) -> str:
    """One row per step: the mean and the peak current per phase, and the lowest limit."""
    return _table(HISTORY_COLUMNS, ([utc(p.time_s), *map(_amps, (*p.mean_a, *p.max_a, *p.limit_a))]
                                    for p in points))


def sessions_csv(sessions: Iterable[Session]) -> str:
    """One row per session; a session still running has no end."""
    return _table(SESSION_COLUMNS, ([_text(s.unit), utc(s.start_s), utc(s.end_s), f"{s.energy_wh / 1000:.3f}",
                                     _text(s.id_tag)] for s in sessions))


def events_csv(events: Iterable[Event]) -> str:
    return _table(EVENT_COLUMNS, ([utc(e.time_s), _text(e.kind), _text(e.text), _text(e.origin)] for e in events))


def utc(time_s: float | None) -> str:
    if time_s is None:
        return ""
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def _amps(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else ""


def _text(value: str | None) -> str:
    if not value:
        return ""
    return f"'{value}" if value.startswith(_FORMULA) else value
