"""Snapshots for the history's tests, and a site whose days of history are made up in virtual time.

``fill`` drives the production recorder and store (``gateway.runtime.history``) the way the running gateway does,
a batch every ``FLUSH_INTERVAL_S`` and a prune every ``PRUNE_INTERVAL_S`` of virtual time, from a fleet of
chargers whose cars come and go: the benchmark measures it, and the browser test starts from a week of it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from drivers.model import Iec61851State
from gateway.core.limits import LimitSource
from gateway.runtime.history.recorder import Recorder
from gateway.runtime.history.service import FLUSH_INTERVAL_S, PRUNE_INTERVAL_S
from gateway.runtime.history.store import HistoryStore
from gateway.runtime.read_model import (
    Availability,
    CircuitStatus,
    Event,
    GatewayHealth,
    LinkQuality,
    SitePhases,
    SiteStatus,
    UnitStatus,
    sum_phases,
)

T0 = 1_780_000_000.0
"""A Monday 20:26:40 UTC, 2026: the tests' virtual start."""
ENERGY_EVERY_S = 300.0
"""How often a charging unit's session energy moves on."""
LINK = LinkQuality(success_rate=1.0, latency_ms=5.0, last_seen_s=None)


def unit(unit_id: str, state: Iec61851State | None = Iec61851State.A, *, current_a: float = 0.0,
         energy_wh: float = 0.0, id_tag: str | None = None, index: int = 0) -> UnitStatus:
    """A unit as the read model shows it; ``state`` None: it does not answer (booked at ``current_a``)."""
    amps = (current_a, current_a, current_a)
    return UnitStatus(
        id=unit_id, index=index, state=state,
        availability=Availability.AVAILABLE if state is not None else Availability.UNAVAILABLE,
        unavailable_reason=None if state is not None else "timeout", setpoint_a=current_a,
        current_a=amps if state is not None else (0.0, 0.0, 0.0), power_w=0.0, session_energy_wh=energy_wh,
        energy_wh=None, limit_a=32.0, max_current_a=32.0, waiting=False, link=LINK, id_tag=id_tag, booked_a=amps)


def status(time_s: float, units: Sequence[UnitStatus] = (), *, limit_a: SitePhases = (48.0, 48.0, 48.0),
           circuits: Sequence[CircuitStatus] = ()) -> SiteStatus:
    return SiteStatus(
        time_s=time_s, enabled=True, installation_limit_a=63.0, network_limit_a=min(limit_a),
        effective_limit_a=limit_a, limit_source=LimitSource.NETWORK, measured_a=(0.0, 0.0, 0.0),
        allocated_a=(0.0, 0.0, 0.0), power_w=0.0, units=tuple(units), health=GatewayHealth.OK,
        circuits=tuple(circuits))


class Feed:
    """The supervisor as the history sees it (``HistorySource``): the snapshots and events a test publishes."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[SiteStatus] = asyncio.Queue()
        self._listeners: list[Callable[[Event], None]] = []

    def on_event(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def event(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    def publish(self, snapshot: SiteStatus) -> None:
        self._queue.put_nowait(snapshot)

    async def updates(self) -> AsyncIterator[SiteStatus]:
        while True:
            yield await self._queue.get()

    async def drained(self) -> None:
        """Until the history has taken every snapshot published."""
        for _ in range(1000):
            if self._queue.empty():
                return
            await asyncio.sleep(0)
        raise AssertionError("the history does not take the snapshots")


@dataclass
class _Charger:
    unit: UnitStatus
    circuit: str
    leaves_s: float = 0.0
    arrives_s: float = 0.0
    rate_wh_s: float = 0.0
    plugged_s: float = 0.0
    metered_s: float = 0.0


@dataclass
class Fleet:
    """``chargers`` units on boards of ``per_circuit``, each board's limit shared by the cars charging on it; a
    car arrives at each unit a few times a day, stays one to eight hours, and every third unit's cars carry an
    idTag. A setting changes and a unit drops out and back every half hour or so."""

    chargers: int
    per_circuit: int = 50
    circuit_limit_a: float = 125.0
    site_limit_a: float = 400.0
    seed: int = 1
    names: str = "cp{n:03d}"
    """A unit's id from its number (1, 2, ...)."""
    _rng: random.Random = field(init=False)
    _units: list[_Charger] = field(init=False)
    _circuits: tuple[CircuitStatus, ...] = field(init=False, default=())
    _changed: bool = field(init=False, default=True)
    _started: bool = field(init=False, default=False)
    _next_event_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._units = [_Charger(unit(self.names.format(n=n + 1), index=n), f"board-{n // self.per_circuit + 1}",
                                arrives_s=self._rng.uniform(0, 6 * 3600)) for n in range(self.chargers)]
        self._started = False

    def statuses(self, start_s: float, end_s: float, every_s: float) -> Iterator[tuple[SiteStatus, list[Event]]]:
        """A snapshot every ``every_s`` and the events since the previous one."""
        if not self._started:  # the first cars arrive within six hours of the start
            self._started = True
            for charger in self._units:
                charger.arrives_s += start_s
        now = start_s
        while now < end_s:
            events = self._step(now)
            if self._changed:
                self._circuits = self._circuit_status()
                self._changed = False
            site = sum_phases(c.drawn_a for c in self._circuits)
            yield SiteStatus(
                time_s=now, enabled=True, installation_limit_a=self.site_limit_a, network_limit_a=self.site_limit_a,
                effective_limit_a=(self.site_limit_a,) * 3, limit_source=LimitSource.NETWORK, measured_a=site,
                allocated_a=site, power_w=0.0, units=tuple(c.unit for c in self._units), health=GatewayHealth.OK,
                circuits=self._circuits), events
            now += every_s

    def _step(self, now: float) -> list[Event]:
        events = []
        for n, charger in enumerate(self._units):
            state = charger.unit.state
            if state is Iec61851State.A and now >= charger.arrives_s:
                charger.plugged_s = now
                charger.leaves_s = now + self._rng.uniform(3600, 8 * 3600)
                charger.rate_wh_s = self._rng.uniform(1.5, 3.0)  # 5.4 to 11 kW
                tag = f"TAG{n:04d}{int(now) % 1000:03d}" if n % 3 == 0 else None
                charger.unit = replace(charger.unit, state=Iec61851State.C, id_tag=tag)
                self._changed = True
            elif state is Iec61851State.C and now >= charger.leaves_s:
                charger.unit = replace(charger.unit, state=Iec61851State.A, current_a=(0.0, 0.0, 0.0),
                                       session_energy_wh=0.0, id_tag=None)
                charger.arrives_s = now + self._rng.uniform(1800, 6 * 3600)
                self._changed = True
            elif state is Iec61851State.C and now - charger.metered_s >= ENERGY_EVERY_S:
                charger.metered_s = now
                energy = (now - charger.plugged_s) * charger.rate_wh_s
                charger.unit = replace(charger.unit, session_energy_wh=energy)
        if now >= self._next_event_s:
            self._next_event_s = now + self._rng.uniform(900, 2700)
            events.append(Event(now, "setting", f"network limit {self._rng.choice((300, 350, 400))} A",
                                "web installer@10.0.0.7"))
            events.append(Event(now + 0.5, "unit-unavailable",
                                f"charger {self._rng.choice(self._units).unit.id} unavailable: timeout"))
        return events

    def _circuit_status(self) -> tuple[CircuitStatus, ...]:
        boards: dict[str, list[_Charger]] = {}
        for charger in self._units:
            boards.setdefault(charger.circuit, []).append(charger)
        circuits = []
        everywhere = sum(1 for c in self._units if c.unit.state is Iec61851State.C)
        for name, members in boards.items():
            charging = [c for c in members if c.unit.state is Iec61851State.C]
            share = min(16.0, self.circuit_limit_a / len(charging), self.site_limit_a / everywhere) if charging else 0.0
            for charger in charging:
                charger.unit = replace(charger.unit, current_a=(share, share, share * 0.97))
            drawn = sum_phases(c.unit.drawn_a for c in members)
            circuits.append(CircuitStatus(name, (self.circuit_limit_a,) * 3, drawn))
        return tuple(circuits)


@dataclass
class FillReport:
    snapshots: int
    batches: int
    write_s: list[float]
    """Wall time of each batch's transaction (prunes included)."""
    observe_s: float
    """Wall time the recorder took for all the snapshots."""
    wal_bytes: int
    """The largest the WAL file grew between checkpoints."""


def fill(path: Path, fleet: Fleet, days: float, *, every_s: float = 10.0, end_s: float | None = None,
         flush_s: float = FLUSH_INTERVAL_S, sizes_at_days: Sequence[float] = (),
         sizes: dict[float, int] | None = None) -> FillReport:
    """``days`` of ``fleet`` into the history at ``path``, ending at ``end_s`` (default: the start plus ``days``),
    a snapshot every ``every_s`` and a batch every ``flush_s``, through the production recorder and store.
    ``sizes`` gets the database's size after each of ``sizes_at_days``."""
    start = (end_s - days * 86_400) if end_s is not None else T0
    end = start + days * 86_400
    recorder, store = Recorder(), HistoryStore(path)
    write_s: list[float] = []
    observe_s = 0.0
    snapshots = 0
    next_flush, next_prune = start + flush_s, start
    wal, wal_bytes = path.with_name(path.name + "-wal"), 0
    marks = sorted(sizes_at_days)
    try:
        for snapshot, events in fleet.statuses(start, end, every_s):
            t0 = time.perf_counter()
            for event in events:
                recorder.event(event)
            recorder.observe(snapshot)
            observe_s += time.perf_counter() - t0
            snapshots += 1
            if snapshot.time_s >= next_flush:
                prune = snapshot.time_s >= next_prune
                t0 = time.perf_counter()
                store.write([recorder.take()], snapshot.time_s if prune else None)
                write_s.append(time.perf_counter() - t0)
                wal_bytes = max(wal_bytes, wal.stat().st_size if wal.exists() else 0)
                next_flush += flush_s
                if prune:
                    next_prune += PRUNE_INTERVAL_S
            while marks and snapshot.time_s >= start + marks[0] * 86_400:
                if sizes is not None:
                    sizes[marks[0]] = store.size_bytes()
                marks.pop(0)
        store.write([recorder.take(final=True)])
    finally:
        store.close()
    return FillReport(snapshots, len(write_s), write_s, observe_s, wal_bytes)
