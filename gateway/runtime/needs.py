"""Where a session's departure and energy wanted come from, resolved to the controller's clock.

Sources, most specific first: a value set for the present session (the web API, the BMS registers, OCPP), then
the site file's fleet schedule for that charger (``schedules:``). A session value lasts until the car unplugs; a
schedule applies to every session at its chargers. Departures are wall-clock times (a driver says "07:30"); the
controller runs on a monotonic clock, so each step converts them with the two clocks read together. No I/O and
no clock of its own: the supervisor passes both times in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from gateway.core.deadlines import Need
from gateway.i18n.text import tr
from gateway.site.config import ScheduleConfig

MAX_ENERGY_KWH = 1000.0
MAX_AHEAD = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SessionNeed:
    """What was said for one session: a wall-clock departure (timezone-aware) and/or energy wanted."""

    departure: datetime | None = None
    energy_kwh: float | None = None
    source: str = ""


def check_session_need(need: SessionNeed, wall_now: datetime) -> str | None:
    """Why ``need`` cannot be taken (a sentence), or None."""
    if need.departure is not None:
        if need.departure.tzinfo is None:
            return tr("needs.departure_without_zone")
        if not wall_now < need.departure <= wall_now + MAX_AHEAD:
            return tr("needs.departure_out_of_range")
    if need.energy_kwh is not None and not (math.isfinite(need.energy_kwh)
                                            and 0 < need.energy_kwh <= MAX_ENERGY_KWH):
        return tr("needs.energy_out_of_range", most=MAX_ENERGY_KWH)
    return None


class NeedBook:
    """Session values and schedules per charger; ``needs`` gives the controller its ``set_needs`` argument."""

    def __init__(self, schedules: Sequence[ScheduleConfig], charger_ids: Sequence[str]) -> None:
        self._schedule: dict[str, ScheduleConfig] = {}
        for schedule in schedules:
            for cid in schedule.chargers or tuple(charger_ids):
                self._schedule.setdefault(cid, schedule)
        self._session: dict[str, SessionNeed] = {}
        self._plugged_at: dict[str, datetime] = {}

    def rebuilt(self, schedules: Sequence[ScheduleConfig], charger_ids: Sequence[str]) -> NeedBook:
        """The same sessions under a new configuration (chargers that left are forgotten)."""
        book = NeedBook(schedules, charger_ids)
        book._session = {cid: n for cid, n in self._session.items() if cid in charger_ids}
        book._plugged_at = {cid: t for cid, t in self._plugged_at.items() if cid in charger_ids}
        return book

    def set_session(self, charger_id: str, need: SessionNeed) -> None:
        """Replace what the present (or next) session at ``charger_id`` asks for; both None clears it."""
        if need.departure is None and need.energy_kwh is None:
            self._session.pop(charger_id, None)
        else:
            self._session[charger_id] = need

    def session(self, charger_id: str) -> SessionNeed | None:
        return self._session.get(charger_id)

    def observe(self, plugged: Mapping[str, bool], wall_now: datetime) -> None:
        """Note plug-ins (a schedule's departure is the next one after it) and forget a session at unplug."""
        for cid, is_plugged in plugged.items():
            if is_plugged:
                self._plugged_at.setdefault(cid, wall_now)
            elif cid in self._plugged_at:
                del self._plugged_at[cid]
                self._session.pop(cid, None)

    def needs(self, now: float, wall_now: datetime) -> dict[str, Need]:
        """Per charger with a car: its need on the controller's clock (``now`` read together with ``wall_now``)."""
        out: dict[str, Need] = {}
        for cid, plugged_at in self._plugged_at.items():
            session, schedule = self._session.get(cid), self._schedule.get(cid)
            departure = session.departure if session is not None else None
            energy = session.energy_kwh if session is not None else None
            if departure is None and schedule is not None and schedule.departure is not None:
                departure = next_at(schedule.departure, plugged_at)
            if energy is None and schedule is not None:
                energy = schedule.energy_kwh
            if departure is None and energy is None:
                continue
            out[cid] = Need(
                departure_s=None if departure is None else now + (departure - wall_now).total_seconds(),
                energy_wh=None if energy is None else energy * 1000.0)
        return out


def next_at(hhmm: str, after: datetime) -> datetime:
    """The first ``HH:MM`` (in ``after``'s time zone) strictly after ``after``."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    candidate = datetime.combine(after.date(), time(hour, minute), tzinfo=after.tzinfo)
    return candidate if candidate > after else candidate + timedelta(days=1)
