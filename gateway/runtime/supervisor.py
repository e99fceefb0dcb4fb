"""The leader: the asyncio shell around the pure controller. It owns every task it starts.

* One poller task per bus (a TCP endpoint or an RS-485 line) reads its chargers one after another, keeps their
  watchdogs alive and programs their fail-safe currents. Buses run concurrently, so a dead unit delays only its
  own line, and only by its own timeout.
* One control task runs a control round (``gateway.core.round``) every tick, after fresh polls, and at once when a
  face submits a command (a limit change is acted on in milliseconds, not at the next tick). The round decides
  what is sent in which order and hears every outcome; this module is its ``Link``: it writes the chargers, each
  bus's writes in turn and different buses at once, and programs fail-safe currents from the pollers.
* After every step it publishes an immutable ``SiteStatus`` that the BMS, OCPP and web faces read.

Every task is owned by a ``TaskSupervisor`` (``gateway.runtime.tasks``): a poller that raises something other than a
``DriverError`` books its chargers as unreachable, is restarted with backoff, and the gateway reports FAULT until
it runs again. Nothing here decides how current is shared: that is ``gateway.core.control``. Nothing here reads
registers: that is ``drivers``. Shutdown cancels and awaits every task, then closes the buses, even after a crash.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from drivers.errors import (
    ConnectionLost,
    DeviceBusy,
    DeviceTimeout,
    DriverError,
    GatewayPathError,
    PermanentError,
    UnsupportedOperation,
)
from drivers.model import ChargerReading, MeterReading
from drivers.ports import ChargerDriver, MeterDriver
from gateway.core.control import ChargerSpec, Controller, Limits, Observation, SetpointCommand, UnitView
from gateway.core.limits import (
    SITE_NODE,
    LimitProvider,
    LimitSource,
    LimitSources,
    MeterTerm,
    PerPhase,
    effective_limits,
    external_limits,
    other_load_a,
)
from gateway.core.round import ControlRound, Outcome
from gateway.runtime.bms_limit import BmsLimit
from gateway.runtime.commands import (
    BmsHeartbeat,
    Command,
    CommandRejected,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetNetworkLimit,
    SetSessionNeed,
    SetUnitLimit,
)
from gateway.runtime.needs import NeedBook, SessionNeed, check_session_need
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
from gateway.runtime.stats import RuntimeStats
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.config import ChargerConfig, CircuitConfig, MeterConfig, SiteConfig
from gateway.site.settings import PERSIST_INTERVAL_S, SiteSettings
from gateway.site.store import JsonStore

log = logging.getLogger(__name__)

EVENT_LOG = 200
"""How many recent events the gateway keeps for its faces."""
LINK_WINDOW = 20
"""Link quality is the success rate over this many recent exchanges."""
UPDATE_QUEUE = 8
CONTROL_TASK = "control"
SAVER_TASK = "bms limit saver"
REASONS: tuple[tuple[type[DriverError], str], ...] = (
    (DeviceTimeout, "timeout"), (ConnectionLost, "connection lost"), (DeviceBusy, "device busy"),
    (GatewayPathError, "no answer behind gateway"))
"""Short words for the transient errors an installer sees most, by class."""


@dataclass(frozen=True, slots=True)
class ChargerHandle:
    """A driver and the bus it shares: chargers with the same ``bus_key`` are polled one after another."""

    driver: ChargerDriver
    bus_key: str


@dataclass(frozen=True, slots=True)
class MeterHandle:
    """The site meter's driver and its bus: on a bus shared with chargers it is read right after them."""

    driver: MeterDriver
    bus_key: str


DriverFactory = Callable[[ChargerConfig], ChargerHandle]
"""Builds one charger's driver; the default talks Modbus (``gateway.runtime.wiring``), tests may use a simulator."""


@dataclass(frozen=True, slots=True)
class UnitRatings:
    """What a charger can take, from its profile and the site file."""

    nameplate_a: float
    limit_a: float
    """Its breaker limit, never above the nameplate: the most the controller ever gives it."""
    min_current_a: float
    resolution_a: float
    has_failsafe: bool


RatingsOf = Callable[[ChargerConfig], UnitRatings]


@dataclass
class _Link:
    """Recent exchanges with one unit, for link quality and for logging transitions once."""

    results: list[bool] = field(default_factory=list)
    latency_ms: float | None = None
    last_seen_wall: float | None = None
    available: bool | None = None

    def record(self, ok: bool, latency_s: float, wall: float) -> None:
        self.results = [*self.results[-(LINK_WINDOW - 1):], ok]
        if ok:
            self.latency_ms = latency_s * 1000.0
            self.last_seen_wall = wall

    @property
    def quality(self) -> float:
        return sum(self.results) / len(self.results) if self.results else 0.0


@dataclass
class _Unit:
    config: ChargerConfig
    handle: ChargerHandle
    ratings: UnitRatings
    link: _Link = field(default_factory=_Link)
    reading: ChargerReading | None = None
    error: str | None = "not polled yet"
    polled: bool = False
    energy_at_plug_wh: float | None = None
    was_plugged: bool = False


class Supervisor:
    """Leads one power-sharing network; implements ``gateway.runtime.commands.GatewayControl`` for the faces and
    ``gateway.core.round.Link`` (``write_setpoints``, ``program_failsafe``, ``now``) for its own control round."""

    def __init__(self, settings: SiteSettings, make_driver: DriverFactory, *, ratings_of: RatingsOf,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 limit_providers: Iterable[LimitProvider] = (), meter: MeterHandle | None = None,
                 tasks: TaskSupervisor | None = None, bms_store: JsonStore | None = None) -> None:
        """``limit_providers``: external limit sources (the OCPP face), more can be added with
        ``add_limit_provider``; ``meter`` reads the meter of the site file's ``meter`` section; ``tasks`` owns the
        pollers and the control task (and the faces' tasks: they are started through ``self.tasks``);
        ``bms_store`` keeps the BMS's limit and watchdog (None: in memory only)."""
        self.settings = settings
        self.bms = BmsLimit(settings, bms_store, clock)
        """The BMS (and MQTT) as a limit source: its network limit and its watchdog."""
        self._save_wanted = asyncio.Event()
        self._make_driver = make_driver
        self._ratings_of = ratings_of
        self._clock = clock
        self._wall = wall
        self._providers: list[LimitProvider] = []
        self._meter = meter
        self._meter_polled = meter is None
        self._meter_other: tuple[float, PerPhase] | None = None
        """(clock, other load) of the last valid meter reading."""
        self._meter_silent: bool | None = None
        self._units: dict[str, _Unit] = {}
        self._circuits: tuple[CircuitConfig, ...] = ()
        self._meter_config: MeterConfig | None = None
        """The circuits and the meter the units were last synced with (``_sync_units``)."""
        self._round = ControlRound(Controller([], settings.config.control))
        self._controller = self._round.controller
        self._fresh: dict[str, Observation] = {}
        self._wake = asyncio.Event()
        self._polled = asyncio.Event()
        self._rounds: set[str] = set()
        """Buses that finished a round since the last control step: a step waits for all of them (or the tick),
        so a site with hundreds of buses steps once per round, not once per bus."""
        self._ready = asyncio.Event()
        self._config_changed = False
        self.tasks = tasks if tasks is not None else TaskSupervisor()
        self.tasks.on_change(self._tasks_changed)
        self._buses: set[str] = set()
        """The buses that have a poller."""
        self._crash_reason: dict[str, str] = {}
        """Per bus: why its poller crashed (its chargers show it while the poller is down)."""
        self._subscribers: list[asyncio.Queue[SiteStatus]] = []
        self._flushed_s = clock()
        self._limit_source: LimitSource | None = None
        self._events: deque[Event] = deque(maxlen=EVENT_LOG)
        self._event_listeners: list[Callable[[Event], None]] = []
        self.stats = RuntimeStats()
        self._shown: tuple[Limits, LimitSource] = (Limits(node_limits_a={SITE_NODE: (0.0, 0.0, 0.0)}),
                                                   LimitSource.NETWORK)
        self._status = self._build_status(*self._shown)
        self._needs = NeedBook((), ())
        self._sync_units()
        for provider in limit_providers:
            self.add_limit_provider(provider)

    def add_limit_provider(self, provider: LimitProvider) -> None:
        """Take ``provider``'s limits into account from the next control step on (which starts at once)."""
        self._providers.append(provider)
        provider.on_change(self._wake.set)
        self._wake.set()

    # -- GatewayControl ------------------------------------------------------------------------------------------
    def status(self) -> SiteStatus:
        return self._status

    def apply(self, command: Command, origin: str) -> None:
        """Validate, persist and act at once; raises ``CommandRejected`` (nothing changed) if refused.

        What the BMS writes (and the MQTT face, which carries the BMS face's writes) never waits for the disk nor
        revalidates the site: its network limit and watchdog go to its own limit source (``self.bms``, saved
        coalesced off the request), its unit limits are persisted coalesced, at most once per
        ``PERSIST_INTERVAL_S`` and at stop (``gateway.site.settings``).
        """
        if isinstance(command, SetSessionNeed):
            self._set_session_need(command, origin)
            return
        now = self._clock()
        from_bms = origin.startswith(("bms", "mqtt"))
        match command:
            case BmsHeartbeat():
                self.bms.heartbeat(now)
                self._wake.set()
                return
            case SetNetworkLimit(limit_a=limit) if from_bms:
                text = self.bms.set_limit(limit, now)
            case SetBmsWatchdog(timeout_s=timeout):
                text = self.bms.set_watchdog(timeout, now)
            case SetBmsFallbackLimit(limit_a=limit):
                text = self.bms.set_fallback(limit)
            case _:
                before = self.settings.config
                text = self.settings.apply(command, deferred=from_bms and isinstance(command, SetUnitLimit))
                if isinstance(command, SetNetworkLimit) and (released := self.bms.release()) is not None:
                    text += f" (replaces the BMS's {released:g} A until the BMS writes again)"
                if _layout(self.settings.config) != _layout(before):
                    self._config_changed = True
        log.info("%s (from %s)", text, origin)
        self._event("setting", text, origin)
        self._wake.set()

    def recent_events(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def on_event(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event as it happens (the history keeps them all; ``recent_events`` only
        the latest ``EVENT_LOG``, and a burst, such as a bus of many chargers going silent, can be longer)."""
        self._event_listeners.append(listener)

    def _set_session_need(self, command: SetSessionNeed, origin: str) -> None:
        """A session's departure and energy wanted (not persisted: it ends when the car unplugs)."""
        self.settings.charger(command.charger_id)  # refuses an unknown charger
        need = SessionNeed(command.departure, command.energy_kwh, origin)
        problem = check_session_need(need, self._wall_now())
        if problem is not None:
            raise CommandRejected(problem, field="departure" if "departure" in problem else "energy_kwh")
        self._needs.set_session(command.charger_id, need)
        text = f"unit {command.charger_id} session: departure {command.departure or '-'}, " \
               f"energy {command.energy_kwh if command.energy_kwh is not None else '-'} kWh"
        log.info("%s (from %s)", text, origin)
        self._event("setting", text, origin)
        self._wake.set()

    def _wall_now(self) -> datetime:
        return datetime.fromtimestamp(self._wall()).astimezone()

    def _event(self, kind: str, text: str, origin: str | None = None) -> None:
        event = Event(self._wall(), kind, text, origin)
        self._events.append(event)
        for listener in self._event_listeners:
            listener(event)

    async def updates(self) -> AsyncIterator[SiteStatus]:
        queue: asyncio.Queue[SiteStatus] = asyncio.Queue(UPDATE_QUEUE)
        self._subscribers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start polling; the first control step waits until every charger has been read (or failed) once."""
        self.bms.start(self._clock())
        await self._restart_pollers()
        self.tasks.start(SAVER_TASK, self._save_loop)
        self.tasks.start(CONTROL_TASK, self._control_loop)

    async def stop(self) -> None:
        """Cancel and await every task (crashed or not), then close every driver: a driver that fails to close
        does not keep the others open."""
        await self.tasks.stop(CONTROL_TASK)
        await self.tasks.stop(SAVER_TASK)
        for key in sorted(self._buses):
            await self.tasks.stop(_poller(key))
        self._buses.clear()
        self.settings.flush()
        self.bms.flush()
        drivers: list[ChargerDriver | MeterDriver] = [u.handle.driver for u in self._units.values()]
        if self._meter is not None:
            drivers.append(self._meter.driver)
        for driver in drivers:
            try:
                await driver.close()
            except DriverError:
                pass
            except Exception:
                log.exception("closing a driver failed")

    async def wait_ready(self, timeout_s: float) -> None:
        """Until the first status after every charger was polled once (for tests and the demo)."""
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()

    # -- units and pollers ---------------------------------------------------------------------------------------
    def _sync_units(self) -> None:
        """Match units and the controller to the configuration, keeping the drivers (and what was last read) of
        chargers that stay the same device: a new breaker limit, phase rotation or circuit changes only what the
        controller books, at its next step."""
        config = self.settings.config
        units: dict[str, _Unit] = {}
        for charger in config.chargers:
            old = self._units.get(charger.id)
            if old is not None and _same_device(old.config, charger):
                old.config, old.ratings = charger, self._ratings_of(charger)
                units[charger.id] = old
            else:
                units[charger.id] = _Unit(charger, self._make_driver(charger), self._ratings_of(charger))
        self._units = units
        self._circuits = config.circuits
        self._meter_config = config.meter
        self._controller.settings = config.control
        self._round.reconfigure([self._spec(c) for c in config.chargers])
        self._needs = self._needs.rebuilt(config.schedules, [c.id for c in config.chargers])

    def _spec(self, charger: ChargerConfig) -> ChargerSpec:
        ratings = self._ratings_of(charger)
        return ChargerSpec(id=charger.id, nodes=self._path(charger.circuit), site_phases=self._site_phases(charger),
                           max_current_a=ratings.limit_a, min_current_a=ratings.min_current_a,
                           resolution_a=ratings.resolution_a, has_failsafe=ratings.has_failsafe,
                           priority=charger.priority, weight=charger.weight)

    def _site_phases(self, charger: ChargerConfig) -> tuple[int, ...]:
        if self.settings.config.supply.phases == 1:
            return (0,)
        return charger.site_phases

    def _path(self, circuit: str) -> tuple[str, ...]:
        parents = {c.id: c.parent for c in self._circuits}
        path = [circuit]
        while path[-1] != SITE_NODE:
            path.append(parents[path[-1]])
        return tuple(path)

    async def _restart_pollers(self) -> None:
        """Stop every poller (and wait until each has ended: two pollers must never share a bus), then start one
        per bus of the current configuration."""
        wanted: dict[str, list[str]] = {}
        for cid, unit in self._units.items():
            wanted.setdefault(unit.handle.bus_key, []).append(cid)
        if self._meter is not None:
            wanted.setdefault(self._meter.bus_key, [])
        for key in sorted(self._buses):
            await self.tasks.stop(_poller(key))
        self._buses.clear()
        self._crash_reason.clear()
        for key, ids in wanted.items():
            with_meter = self._meter is not None and self._meter.bus_key == key
            self._buses.add(key)
            self.tasks.start(_poller(key), functools.partial(self._poll_loop, key, tuple(ids), with_meter),
                             on_crash=functools.partial(self._poller_crashed, key, tuple(ids)), by_rounds=True)

    def _poller_crashed(self, key: str, charger_ids: Sequence[str], exc: Exception) -> None:
        """A poller died of a bug: its chargers are booked as unreachable until it runs again, and the round it
        was in counts as finished (a control step must not wait for it)."""
        reason = f"internal error: {type(exc).__name__}: {exc}"
        self._crash_reason[key] = reason
        for cid in charger_ids:
            unit = self._units.get(cid)
            if unit is not None:
                self._record(cid, unit, None, reason, 0.0)
        if self._meter is not None and self._meter.bus_key == key:
            self._meter_polled = True
        self._rounds.add(key)
        self._polled.set()

    def _tasks_changed(self) -> None:
        """A task went down or came back: show it at once (the control task may be the one that is down)."""
        self._publish(self._build_status(*self._shown))
        self._wake.set()

    async def _poll_loop(self, key: str, charger_ids: Sequence[str], with_meter: bool) -> None:
        """Read each charger of one bus in turn, every tick; keep its watchdog fed and its fail-safe programmed.
        The meter comes last, so the chargers' currents it is compared with are as fresh as they can be."""
        while True:
            started = self._clock()
            for cid in charger_ids:
                unit = self._units.get(cid)
                if unit is not None:
                    await self._poll_one(cid, unit)
            if with_meter:
                await self._poll_meter()
            self.tasks.ran(_poller(key))
            self._rounds.add(key)
            if self._rounds >= self._buses:
                self._polled.set()
            elapsed = self._clock() - started
            await asyncio.sleep(max(0.0, self.settings.config.control.tick_s - elapsed))

    async def _poll_one(self, cid: str, unit: _Unit) -> None:
        driver = unit.handle.driver
        t0 = self._clock()
        try:
            reading = await driver.read()
            await driver.keep_alive()
        except DriverError as exc:
            self._record(cid, unit, None, _reason(exc), self._clock() - t0)
            return
        self._record(cid, unit, reading, None, self._clock() - t0)
        await self._round.program_failsafe(cid, self)

    def _record(self, cid: str, unit: _Unit, reading: ChargerReading | None, error: str | None,
                latency_s: float) -> None:
        crash = self._crash_reason.get(unit.handle.bus_key)
        if reading is not None and crash is not None and self.tasks.is_down(_poller(unit.handle.bus_key)):
            reading, error = None, crash  # a poller that crashed counts as down until it completes a round
        unit.link.record(reading is not None, latency_s, self._wall())
        unit.polled = True
        if reading is not None and reading.invalid and reading.state is None:
            error = "invalid readings: " + ", ".join(reading.invalid)
            reading = None
        unit.error = error
        if error is not None:
            self.stats.exchange_failed(cid)
        if reading is not None:
            unit.reading = reading
            self._track_session(unit, reading)
        available = reading is not None
        if unit.link.available is not available:
            if available:
                log.info("charger %s available%s", cid, "" if unit.link.available is None else " again")
                if unit.link.available is not None:
                    self._event("unit-available", f"charger {cid} available again")
            else:
                log.warning("charger %s unavailable: %s", cid, error)
                self._event("unit-unavailable", f"charger {cid} unavailable: {error}")
            unit.link.available = available
        self._fresh[cid] = Observation(reading, error)

    def _track_session(self, unit: _Unit, reading: ChargerReading) -> None:
        plugged = reading.state is not None and reading.state.plugged_in
        if plugged and not unit.was_plugged:
            unit.energy_at_plug_wh = reading.energy_wh
        unit.was_plugged = plugged

    async def _poll_meter(self) -> None:
        assert self._meter is not None and self._meter_config is not None
        try:
            reading: MeterReading | None = await self._meter.driver.read()
        except DriverError as exc:
            log.debug("site meter: %s", _reason(exc))
            reading = None
        self._meter_polled = True
        if reading is not None:
            other = other_load_a(reading, self._ours_on(self._meter_config.circuit))
            if other is not None:
                self._meter_other = (self._clock(), other)

    def _ours_on(self, node: str) -> PerPhase:
        """Our chargers' measured current on ``node`` per site phase (the part of the meter's figure we explain)."""
        ours = [0.0, 0.0, 0.0]
        for unit in self._units.values():
            if unit.reading is None or unit.error is not None or node not in self._path(unit.config.circuit):
                continue
            for own, site in zip(unit.reading.current_a, self._site_phases(unit.config), strict=False):
                ours[site] += own or 0.0
        return (ours[0], ours[1], ours[2])

    def _meter_term(self, now: float) -> MeterTerm | None:
        """The meter's limit term; silent (a fallback, never unlimited) without a valid reading for stale_after_s."""
        config = self._meter_config
        if config is None:
            return None
        fresh = self._meter_other is not None and now - self._meter_other[0] <= config.stale_after_s
        silent = not fresh
        if silent is not self._meter_silent:
            if silent:
                text = f"site meter silent: chargers on {config.circuit} share {config.fallback_limit_a:g} A"
                log.warning("%s", text)
                self._event("meter-silent", text)
            elif self._meter_silent is not None:
                log.info("site meter answering again")
                self._event("meter-available", "site meter answering again")
            self._meter_silent = silent
        return MeterTerm(node=config.circuit, node_limit_a=config.limit_a,
                         other_load_a=self._meter_other[1] if fresh and self._meter_other else None,
                         margin_a=config.margin_a, fallback_a=config.fallback_limit_a)

    # -- the round's link -----------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    async def program_failsafe(self, charger_id: str, current_a: float) -> Outcome:
        unit = self._units.get(charger_id)
        if unit is None:
            return Outcome.FAILED
        try:
            await unit.handle.driver.configure_failsafe(current_a, unit.config.comm_timeout_s)
        except UnsupportedOperation:
            return Outcome.UNSUPPORTED
        except DriverError as exc:
            log.warning("charger %s: fail-safe current not programmed: %s", charger_id, _reason(exc))
            return _outcome(exc)
        return Outcome.DONE

    async def write_setpoints(self, commands: Sequence[SetpointCommand]) -> Sequence[Outcome]:
        """All buses at once, one bus's writes in turn."""
        outcomes: dict[int, Outcome] = {}
        by_bus: dict[str, list[int]] = {}
        for index, command in enumerate(commands):
            unit = self._units.get(command.charger_id)
            if unit is None:
                outcomes[index] = Outcome.FAILED
            else:
                by_bus.setdefault(unit.handle.bus_key, []).append(index)

        async def write_bus(indices: Sequence[int]) -> None:
            for index in indices:
                outcomes[index] = await self._write_one(commands[index])

        await asyncio.gather(*(write_bus(indices) for indices in by_bus.values()))
        return [outcomes[index] for index in range(len(commands))]

    async def _write_one(self, command: SetpointCommand) -> Outcome:
        unit = self._units[command.charger_id]
        try:
            await unit.handle.driver.write_setpoint(command.current_a)
        except DriverError as exc:
            log.warning("charger %s: setpoint %g A not acknowledged: %s", command.charger_id, command.current_a,
                        _reason(exc))
            return _outcome(exc)
        return Outcome.DONE

    # -- control -------------------------------------------------------------------------------------------------
    async def _control_loop(self) -> None:
        await self._first_round()
        while True:
            if self._config_changed:
                self._config_changed = False
                self._sync_units()
                await self._restart_pollers()
            await self._step()
            waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(self._polled.wait())]
            try:
                await asyncio.wait(waiters, timeout=self._until_next_step(), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            self._wake.clear()
            self._polled.clear()
            self._rounds.clear()

    async def _first_round(self) -> None:
        """Read every charger before commanding any: a restart must not drop sessions that are running."""
        while not (self._meter_polled and all(u.polled for u in self._units.values())):
            await self._polled.wait()
            self._polled.clear()
            self._rounds.clear()

    def _until_next_step(self) -> float:
        """A tick, or less when a limit changes by itself before then (a schedule period starts, the BMS watchdog
        expires)."""
        tick = self.settings.config.control.tick_s
        wall = self._wall()
        changes = [t for t in (p.next_change(wall) for p in self._providers) if t is not None]
        waits = [tick, *(max(0.0, t - wall) for t in changes)]
        now = self._clock()
        if (deadline := self.bms.deadline(now)) is not None:
            waits.append(deadline - now)
        return min(waits)

    def _limits(self, now: float) -> tuple[Limits, LimitSource]:
        config = self.settings.config
        ocpp, caps = external_limits(self._providers, self._wall(), self.settings.unit_limits_a)
        effective = effective_limits(LimitSources(
            installation_a=config.installation_limit_a, network_a=config.network_limit_a,
            circuits_a={c.id: c.limit_a for c in self._circuits}, bms_a=self.bms.limit_a,
            bms_fallback_a=self.bms.fallback_in_force(now), ocpp_site_a=ocpp, meter=self._meter_term(now)),
            previous=self._limit_source)
        return Limits(node_limits_a=effective.node_limits_a, enabled=config.enabled, unit_caps_a=caps), \
            effective.site_source

    async def _step(self) -> None:
        now = self._clock()
        limits, source = self._limits(now)
        if source is not self._limit_source:
            if self._limit_source is not None:
                text = "effective limit now set by {}: {} A".format(
                    source.name.lower().replace("_", " "), "/".join(f"{v:g}" for v in limits.node_limits_a[SITE_NODE]))
                log.info("%s", text)
                self._event("limit-source", text)
            self._limit_source = source
        fresh, self._fresh = self._fresh, {}
        wall = self._wall_now()
        self._needs.observe({v.id: v.plugged for v in self._controller.views(now)}, wall)
        self._controller.set_needs(self._needs.needs(now, wall))
        await self._round.run(now, fresh, limits, self)
        self._publish(self._build_status(limits, source))
        self.stats.steps.observe(self._clock() - now)
        self._ready.set()
        if self.settings.unsaved and now - self._flushed_s >= PERSIST_INTERVAL_S:
            self._flushed_s = now
            self.settings.flush()
        if self.bms.save_due(now):
            self._save_wanted.set()

    async def _save_loop(self) -> None:
        """Saves the BMS limit source when a control step finds it due; the write runs on a worker thread, so the
        control loop and the faces' requests never wait for the disk."""
        while True:
            await self._save_wanted.wait()
            self._save_wanted.clear()
            await self.bms.save()

    # -- read model ----------------------------------------------------------------------------------------------
    def _build_status(self, limits: Limits, source: LimitSource) -> SiteStatus:
        self._shown = (limits, source)
        config: SiteConfig = self.settings.config
        views: dict[str, UnitView] = {v.id: v for v in self._controller.views(self._clock())}
        caps = self.settings.unit_limits_a
        units = []
        measured = [0.0, 0.0, 0.0]
        booked = [0.0, 0.0, 0.0]
        power = 0.0
        for index, (cid, unit) in enumerate(self._units.items()):
            view = views.get(cid)
            reading = unit.reading if unit.error is None else None
            ratings = unit.ratings
            if view is not None:
                for p in range(3):
                    measured[p] += view.measured_a[p]
                    booked[p] += view.booked_a[p]
            unit_power = reading.power_w if reading is not None and reading.power_w is not None else 0.0
            power += unit_power
            availability = Availability.AVAILABLE
            if unit.error is not None:
                availability = Availability.UNAVAILABLE
            elif not config.enabled or caps.get(cid, math.inf) == 0:
                availability = Availability.DISABLED
            session = self._needs.session(cid)
            units.append(UnitStatus(
                id=cid, index=index, state=reading.state if reading is not None else None,
                availability=availability,
                unavailable_reason=unit.error if unit.error is not None else (view.reason if view else None),
                setpoint_a=(view.setpoint_a or 0.0) if view else 0.0,
                current_a=view.measured_a if view else (0.0, 0.0, 0.0), power_w=unit_power,
                session_energy_wh=self._session_energy(unit),
                energy_wh=reading.energy_wh if reading is not None else None,
                limit_a=min(caps.get(cid, ratings.limit_a), ratings.limit_a), max_current_a=ratings.nameplate_a,
                waiting=bool(view and view.waiting), error_code=(reading.error_code or 0) if reading else 0,
                id_tag=reading.id_tag if reading is not None else None,
                booked_a=view.booked_a if view else (0.0, 0.0, 0.0),
                departure_s=session.departure.timestamp() if session and session.departure else None,
                energy_wanted_kwh=session.energy_kwh if session else None,
                link=LinkQuality(success_rate=unit.link.quality, latency_ms=unit.link.latency_ms,
                                 last_seen_s=unit.link.last_seen_wall)))
        site = limits.node_limits_a.get(SITE_NODE, (0.0, 0.0, 0.0))
        circuits = self._circuit_status(limits, units)
        health = GatewayHealth.OK
        if any(u.availability is Availability.UNAVAILABLE for u in units):
            health = GatewayHealth.DEGRADED
        if self.tasks.down:
            health = GatewayHealth.FAULT
        return SiteStatus(
            time_s=self._wall(), enabled=config.enabled, installation_limit_a=config.installation_limit_a,
            network_limit_a=self.bms.network_a(), effective_limit_a=site, limit_source=source,
            measured_a=(measured[0], measured[1], measured[2]), allocated_a=(booked[0], booked[1], booked[2]),
            power_w=power, units=tuple(units), health=health, bms_watchdog_s=self.bms.watchdog_s,
            bms_fallback_limit_a=self.bms.fallback_a,
            invariant_violations=self._round.violation_rounds, booked_excess_a=self._round.excess_a,
            circuits=circuits)

    def _circuit_status(self, limits: Limits, units: Sequence[UnitStatus]) -> tuple[CircuitStatus, ...]:
        """Each circuit's limit in force and the ``drawn_a`` of the units on it or below it."""
        circuits = self.settings.config.circuits
        if not circuits:
            return ()
        drawn: dict[str, list[SitePhases]] = {c.id: [] for c in circuits}
        for unit in units:
            for node in self._path(self._units[unit.id].config.circuit)[:-1]:  # the last is the site
                drawn[node].append(unit.drawn_a)
        return tuple(CircuitStatus(id=c.id, limit_a=limits.node_limits_a.get(c.id, (c.limit_a,) * 3),
                                   drawn_a=sum_phases(drawn[c.id])) for c in circuits)

    def _session_energy(self, unit: _Unit) -> float:
        reading = unit.reading
        if reading is None or reading.state is None or not reading.state.plugged_in:
            return 0.0
        if reading.session_energy_wh is not None:
            return reading.session_energy_wh
        if reading.energy_wh is not None and unit.energy_at_plug_wh is not None:
            return max(0.0, reading.energy_wh - unit.energy_at_plug_wh)
        return 0.0

    def _publish(self, status: SiteStatus) -> None:
        self._status = status
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a slow reader gets the newest snapshot, not a backlog
            queue.put_nowait(status)


def _layout(config: SiteConfig) -> tuple[object, ...]:
    """What the units, their circuit paths and the control task are built from: a change is taken over by
    ``_sync_units`` before the next control step, never half-way through one (a circuit renamed while a step runs
    must not meet the units' old paths)."""
    return config.chargers, config.circuits, config.meter, config.control


def _same_device(a: ChargerConfig, b: ChargerConfig) -> bool:
    """The same device reached the same way: its driver can stay (what differs is how it is wired)."""
    return (a.profile, a.transport, a.comm_timeout_s) == (b.profile, b.transport, b.comm_timeout_s)


def _outcome(exc: DriverError) -> Outcome:
    return Outcome.TIMED_OUT if isinstance(exc, DeviceTimeout) else Outcome.FAILED


def _poller(bus_key: str) -> str:
    """The task name of a bus's poller."""
    return f"poll {bus_key}"


def _reason(exc: DriverError) -> str:
    """A short, stable reason for the read model and logs ("timeout", "connection lost", "exception 4", ...)."""
    for kind, words in REASONS:
        if isinstance(exc, kind):
            return words
    code = getattr(exc, "exception_code", None)
    if code is not None:
        return f"exception {code}"
    if isinstance(exc, PermanentError):
        return f"configuration: {exc}"
    return str(exc) or type(exc).__name__
