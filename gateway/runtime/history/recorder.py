"""What the gateway remembers, decided from the snapshots it publishes: pure (no I/O, no clock reads).

Three records, each from the read model alone:

* **Sessions.** A session starts when a unit shows a car plugged in (IEC 61851 state B, C or D) and ends when it
  shows none (state A). While the unit does not answer, or reports a fault (E, F), nothing is known and the session
  stays open. Its energy is the most the unit reported for it (the charger's own session counter, or the gateway's
  count since plug-in); its idTag is the first one the unit reported (OCPP followers). A session still open when
  the gateway stopped carries on after a restart if the car is still there within ``RESUME_GAP_S``; otherwise it
  ends when it was last seen.
* **Events**, as the supervisor reports them.
* **Current per phase** of the site and of each circuit: what is drawn (measured where a unit answers, booked
  where it does not) and the limit in force, in buckets of a few fixed sizes (``TIERS``): each bucket keeps the
  mean and the peak drawn and the lowest limit over its samples. The latest ten minutes are also kept a point a
  second, in memory only, for the live chart.

The shell (``gateway.runtime.history.service``) feeds snapshots and events in, and takes out what is ready to be
written in batches (``take``) or, for a read, what is not written yet (``peek``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from drivers.model import Iec61851State
from gateway.core.limits import SITE_NODE
from gateway.runtime.read_model import Event, SitePhases, SiteStatus, UnitStatus

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Tier:
    step_s: int
    """The bucket size."""
    keep_s: int
    """Buckets older than this are pruned."""


TIERS = (Tier(step_s=10, keep_s=DAY_S), Tier(step_s=60, keep_s=8 * DAY_S))
"""10 s buckets for a day, 1 min buckets for eight days (the 7-day chart is always whole)."""
FINE, COARSE = 0, 1


@dataclass(frozen=True, slots=True)
class View:
    """A chart range: the tier it reads and the step it is shown at (a whole number of that tier's steps)."""

    span_s: int
    tier: int
    step_s: int


VIEWS = {"1h": View(3_600, FINE, 10), "24h": View(DAY_S, COARSE, 120), "7d": View(7 * DAY_S, COARSE, 900)}
"""At most 720 points whatever the range: 360 at 10 s, 720 at 2 min, 672 at 15 min."""
RECENT = "10m"
RECENT_POINTS = 600
RECENT_SPACING_S = 1.0
"""The live chart: ten minutes at a point a second."""
RESUME_GAP_S = 600.0
"""A session open when the gateway stopped carries on if the car is still there this soon after it was last seen:
a restart or an upgrade takes well under this. After a longer outage another car may have come meanwhile."""
SITE = SITE_NODE
"""The series of the whole site; the others are named after their circuit."""


@dataclass(frozen=True, slots=True)
class Point:
    """Current of one series over one step (or at one instant, for the live chart)."""

    time_s: float
    """The start of the step (UNIX seconds)."""
    mean_a: SitePhases
    max_a: SitePhases
    limit_a: SitePhases
    """The lowest limit in force during the step."""


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A bucket as it is stored: which tier and series, and how many samples it holds (so two parts of one bucket,
    written before and after a restart, merge into the right mean)."""

    tier: int
    series: str
    time_s: int
    samples: int
    point: Point


@dataclass(frozen=True, slots=True)
class Session:
    unit: str
    start_s: float
    end_s: float | None
    """None while it runs."""
    energy_wh: float
    id_tag: str | None
    last_s: float
    """When the car was last seen plugged in (where a session ends if the gateway was stopped when it left)."""


@dataclass
class Batch:
    """What is to be written together."""

    points: list[StoredPoint] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    """The latest state of every session that changed; a session appears once."""

    def __bool__(self) -> bool:
        return bool(self.points or self.events or self.sessions)


@dataclass
class _Bucket:
    start_s: int
    samples: int = 0
    total: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    peak: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    limit: list[float] = field(default_factory=lambda: [float("inf")] * 3)

    def add(self, drawn: SitePhases, limit: SitePhases) -> None:
        self.samples += 1
        for p in range(3):
            self.total[p] += drawn[p]
            self.peak[p] = max(self.peak[p], drawn[p])
            self.limit[p] = min(self.limit[p], limit[p])

    def stored(self, tier: int, series: str) -> StoredPoint:
        n = self.samples
        mean = (self.total[0] / n, self.total[1] / n, self.total[2] / n)
        return StoredPoint(tier, series, self.start_s, n, Point(
            self.start_s, mean, (self.peak[0], self.peak[1], self.peak[2]),
            (self.limit[0], self.limit[1], self.limit[2])))


@dataclass
class _Open:
    """A session in progress."""

    unit: str
    start_s: float
    last_s: float
    base_wh: float = 0.0
    """Energy counted before a restart of the gateway, where the unit's count started again from zero."""
    energy_wh: float = 0.0
    id_tag: str | None = None

    @classmethod
    def resumed(cls, stored: Session, reported_wh: float) -> _Open:
        """A charger's own session counter carries on across the gateway's restart; the gateway's count since
        plug-in starts again from zero, so what it counted before is added."""
        base = 0.0 if reported_wh >= stored.energy_wh else stored.energy_wh
        return cls(stored.unit, stored.start_s, stored.last_s, base, stored.energy_wh, stored.id_tag)

    def seen(self, time_s: float, unit: UnitStatus) -> None:
        self.last_s = time_s
        self.energy_wh = max(self.energy_wh, self.base_wh + unit.session_energy_wh)
        if self.id_tag is None and unit.id_tag:
            self.id_tag = unit.id_tag

    def row(self, end_s: float | None = None) -> Session:
        return Session(self.unit, self.start_s, end_s, self.energy_wh, self.id_tag, self.last_s)


class Recorder:
    """Turns snapshots and events into rows; holds what has not been taken yet."""

    def __init__(self) -> None:
        self._resumable: dict[str, Session] = {}
        self._matched = False
        self._open: dict[str, _Open] = {}
        self._dirty: set[str] = set()
        self._closed: list[Session] = []
        self._buckets: dict[tuple[int, str], _Bucket] = {}
        self._points: list[StoredPoint] = []
        self._events: list[Event] = []
        self._recent: dict[str, deque[Point]] = {}

    def resume(self, sessions: Iterable[Session]) -> None:
        """The sessions the store holds as open (the gateway stopped while they ran): matched with the units as the
        first snapshots show them."""
        self._resumable = {s.unit: s for s in sessions}
        self._matched = False

    # -- input ---------------------------------------------------------------------------------------------------
    def event(self, event: Event) -> None:
        self._events.append(event)

    def observe(self, status: SiteStatus) -> None:
        now = status.time_s
        self._sample(now, SITE, status.drawn_a, status.effective_limit_a)
        for circuit in status.circuits:
            self._sample(now, circuit.id, circuit.drawn_a, circuit.limit_a)
        self._track_sessions(now, status.units)

    def _sample(self, now: float, series: str, drawn: SitePhases, limit: SitePhases) -> None:
        for tier, spec in enumerate(TIERS):
            start = int(now // spec.step_s) * spec.step_s
            key = (tier, series)
            bucket = self._buckets.get(key)
            if bucket is None or bucket.start_s != start:
                if bucket is not None:
                    self._points.append(bucket.stored(tier, series))
                bucket = self._buckets[key] = _Bucket(start)
            bucket.add(drawn, limit)
        recent = self._recent.setdefault(series, deque(maxlen=RECENT_POINTS))
        if not recent or not 0 <= now - recent[-1].time_s < RECENT_SPACING_S:
            recent.append(Point(now, drawn, drawn, limit))

    def _track_sessions(self, now: float, units: Iterable[UnitStatus]) -> None:
        present: set[str] = set()
        for unit in units:
            present.add(unit.id)
            state = unit.state if unit.answering else None
            if state is None or not (state.plugged_in or state is Iec61851State.A):
                continue  # nothing known of the car: an open session stays open
            session = self._open.get(unit.id)
            stored = self._resumable.pop(unit.id, None)
            if stored is not None:
                if state.plugged_in and now - stored.last_s <= RESUME_GAP_S:
                    session = self._open[unit.id] = _Open.resumed(stored, unit.session_energy_wh)
                else:
                    self._closed.append(replace(stored, end_s=stored.last_s))
            if state.plugged_in:
                if session is None:
                    session = self._open[unit.id] = _Open(unit.id, now, now)
                session.seen(now, unit)
                self._dirty.add(unit.id)
            elif session is not None:
                del self._open[unit.id]
                self._dirty.discard(unit.id)
                self._closed.append(session.row(end_s=now))
        if not self._matched:
            self._matched = True
            for unit_id in [u for u in self._resumable if u not in present]:  # no longer on the site
                stored = self._resumable.pop(unit_id)
                self._closed.append(replace(stored, end_s=stored.last_s))

    # -- output --------------------------------------------------------------------------------------------------
    def take(self, *, final: bool = False) -> Batch:
        """Everything ready to be written, and forget it: completed buckets, events, sessions that changed.
        ``final`` (at stop): the buckets in progress too."""
        batch = Batch(self._points, self._events, [*self._closed, *self._open_rows()])
        if final:
            batch.points += [bucket.stored(tier, series) for (tier, series), bucket in self._buckets.items()]
            self._buckets.clear()
        self._points, self._events, self._closed = [], [], []
        self._dirty.clear()
        return batch

    def peek(self) -> Batch:
        """Everything not taken yet, the buckets in progress included, without forgetting it (for reads)."""
        points = [*self._points, *(b.stored(tier, series) for (tier, series), b in self._buckets.items())]
        return Batch(points, list(self._events), [*self._closed, *self._open_rows()])

    def _open_rows(self) -> list[Session]:
        return [self._open[unit].row() for unit in sorted(self._dirty) if unit in self._open]

    def recent(self, series: str) -> list[Point]:
        """The live chart's points of ``series``, oldest first."""
        return list(self._recent.get(series, ()))
