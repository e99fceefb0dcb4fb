"""``powershare demo``: the real gateway leading simulated chargers on loopback, with cars coming and going.

Everything the gateway talks to is real on the wire: each simulated charger (profile ``powershare-sim``) is a
Modbus TCP server on its own loopback port, and the gateway is the product itself (``GatewayApp``: supervisor,
drivers, buses, BMS face), as ``powershare run`` builds it. The demo adds what a car park adds: cars arriving
and leaving (``gateway.demo.traffic``), a building management system that halves the limit for a while, and a
charger that stops answering and comes back. It measures what the simulated cars physically draw against the
limit in force (``gateway.demo.accounting``), so "the limit is kept" is a measurement, not a claim.

Faces other than the BMS (OCPP, web) join through ``extra_faces``, exactly as they join ``powershare run``.
With ``ocpp_chargers`` the fleet is mixed: that many simulated OCPP 1.6J chargers (``drivers.sim.ocpp_charger``)
connect to the gateway's own OCPP endpoint on loopback and are led with the Modbus ones (docs/ocpp-followers.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.faults import Fault, FaultKind
from drivers.sim.ocpp_charger import SimOcppCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from drivers.sim.vehicle import Vehicle
from gateway.demo.accounting import OverLimitAccount, PerPhase
from gateway.demo.traffic import CYCLE_S, Moment, MomentKind, Traffic, Visit, script
from gateway.runtime.app import FaceFactory, GatewayApp
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.read_model import Event, SiteStatus
from gateway.site.config import SiteConfig, parse_site

log = logging.getLogger(__name__)

PROFILE = "powershare-sim"
ROTATIONS = ("L1L2L3", "L2L3L1", "L3L1L2")
"""Chargers wired with rotated phases, as installers do to spread single-phase cars over the supply."""
SAMPLE_S = 0.05
EVENTS_KEPT = 200
OCPP_KEY = "powershare-demo-key-0123"
"""The demo's OCPP followers' password: a demo on loopback, written to a temporary file the site file names."""
OCPP_KEY_FILE = "demo-ocpp.key"


@dataclass(frozen=True)
class DemoOptions:
    chargers: int = 6
    limit_a: float = 48.0
    duration_s: float | None = None
    speed: float = 60.0
    seed: int = 1
    bms_port: int = 5020
    tick_s: float = 1.0
    ocpp_chargers: int = 0
    """Simulated OCPP chargers besides the ``chargers`` Modbus ones."""


@dataclass
class Bay:
    """One simulated charger and what the car park knows about it."""

    id: str
    charger: SimCharger | SimOcppCharger
    line: SimLine | None
    """The Modbus charger's line (its server can be silenced); None for an OCPP charger."""
    rotation: tuple[int, ...]
    visit: Visit | None = None
    leaves_at: float | None = None
    start_energy_wh: float = 0.0

    @property
    def vehicle(self) -> Vehicle | None:
        if isinstance(self.charger, SimCharger):
            return self.charger.vehicle
        return self.charger.connectors[1].vehicle

    @property
    def phases(self) -> int:
        return self.charger.profile.phases if isinstance(self.charger, SimCharger) else self.charger.phases

    def lifetime_energy_wh(self) -> float:
        if isinstance(self.charger, SimCharger):
            return float(self.charger.values()["energy"])
        return self.charger.connectors[1].energy_wh()

    def site_currents_a(self) -> PerPhase:
        """What its car physically draws, on site phases."""
        totals = [0.0, 0.0, 0.0]
        for own, site in zip(self.charger.phase_currents_a(), self.rotation, strict=True):
            totals[site] += own
        return (totals[0], totals[1], totals[2])

    def energy_wh(self) -> float:
        return self.lifetime_energy_wh() - self.start_energy_wh


@dataclass
class Frame:
    """Everything a view shows, taken at one instant."""

    elapsed_s: float
    status: SiteStatus
    bays: list[Bay]
    events: list[Event]
    drawn_a: PerPhase
    limit_a: PerPhase
    account: OverLimitAccount
    bms_address: tuple[str, int] | None


def demo_site(options: DemoOptions, ports: Sequence[int]) -> dict[str, Any]:
    """The site file the demo gives the gateway."""
    ocpp = [{"id": f"oc{i + 1}", "phase_rotation": ROTATIONS[(len(ports) + i) % 3], "comm_timeout_s": 10,
             "transport": {"type": "ocpp", "charge_point_id": f"demo-ocpp-{i + 1}", "password_file": OCPP_KEY_FILE,
                           "max_current_a": 32}}
            for i in range(options.ocpp_chargers)]
    return {
        "name": "powershare demo",
        "installation_limit_a": max(options.limit_a, 63.0),
        "network_limit_a": options.limit_a,
        "enabled": True,
        "control": {"tick_s": options.tick_s},
        "chargers": [*({"id": f"cp{i + 1}", "profile": PROFILE, "phase_rotation": ROTATIONS[i % 3],
                        "comm_timeout_s": 10,
                        "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.5}}
                       for i, port in enumerate(ports)), *ocpp],
        "bms": {"host": "127.0.0.1", "port": options.bms_port, "allow_write_from": ["127.0.0.1"]},
        **({"ocpp_endpoint": {"host": "127.0.0.1", "port": 0}} if ocpp else {}),
    }


def check_options(options: DemoOptions, registry: ProfileRegistry) -> SiteConfig:
    """The demo's site, checked by the site file's rules before anything listens; ``ValueError`` if refused."""
    if not 1 <= options.chargers <= 200:
        raise ValueError("--chargers must be 1..200")
    if not 0 <= options.ocpp_chargers <= 50:
        raise ValueError("--ocpp-chargers must be 0..50")
    if not options.speed > 0 or not math.isfinite(options.speed):
        raise ValueError("--speed must be > 0")
    if options.duration_s is not None and not options.duration_s > 0:
        raise ValueError("--duration must be > 0")
    site, _ = parse_site(demo_site(options, [502] * options.chargers), "demo", registry.nameplate_a)
    return site


class Demo:
    def __init__(self, options: DemoOptions, *, extra_faces: Sequence[FaceFactory] = (),
                 registry: ProfileRegistry | None = None) -> None:
        self.options = options
        self.registry = registry or ProfileRegistry.shipped()
        check_options(options, self.registry)
        self.traffic = Traffic(options.seed, options.speed)
        self.account = OverLimitAccount()
        self.sim = SimulatedSite(time.monotonic)
        self.bays: list[Bay] = []
        self.app: GatewayApp | None = None
        self._extra_faces = extra_faces
        self._events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self._started = time.monotonic()
        self._drawn: PerPhase = (0.0, 0.0, 0.0)
        self._limit: PerPhase = (options.limit_a,) * 3
        self._silenced: Bay | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, show: Callable[[Frame], None], show_every_s: float) -> dict[str, Any]:
        """Until ``stop`` is set or the duration has passed; returns the summary."""
        profile = self.registry.charger(PROFILE)
        for i in range(self.options.chargers):
            line = self.sim.add_line(TcpListen("127.0.0.1", 0))
            charger = self.sim.add_chargers(line, profile, (1,))[0]
            rotation = tuple(int(name) - 1 for name in ROTATIONS[i % 3][1::2])
            self.bays.append(Bay(f"cp{i + 1}", charger, line, rotation, start_energy_wh=float(
                charger.values()["energy"])))
        await self.sim.start()
        try:
            ports = [bay.line.server.port for bay in self.bays if bay.line is not None and bay.line.server is not None]
            site, _ = parse_site(demo_site(self.options, ports), "demo", self.registry.nameplate_a)
            with tempfile.TemporaryDirectory(prefix="powershare-demo-") as keys:
                (Path(keys) / OCPP_KEY_FILE).write_text(OCPP_KEY + "\n", encoding="utf-8")
                self.app = GatewayApp.build(site, self.registry, state_dir=None, extra_faces=self._extra_faces,
                                            base_dir=Path(keys))
                for _ in range(math.ceil(len(self.bays) / 2)):
                    self._arrive(0.0)
                async with self.app:
                    followers = await self._connect_ocpp(self.app)
                    try:
                        await self._lead(stop, show, show_every_s)
                    finally:
                        for follower in followers:
                            await follower.stop()
                    show(self.frame())
        finally:
            await self.sim.stop()
        return self.summary()

    async def _connect_ocpp(self, app: GatewayApp) -> list[SimOcppCharger]:
        """The OCPP chargers, once the gateway's endpoint listens; they join the bays after the Modbus ones."""
        if not self.options.ocpp_chargers:
            return []
        url = f"ws://127.0.0.1:{app.wiring.ocpp.endpoint.port}"
        followers = []
        for i in range(self.options.ocpp_chargers):
            follower = SimOcppCharger(f"demo-ocpp-{i + 1}", url, time.monotonic, password=OCPP_KEY)
            rotation = tuple(int(name) - 1 for name in ROTATIONS[(len(self.bays)) % 3][1::2])
            self.bays.append(Bay(f"oc{i + 1}", follower, None, rotation,
                                 start_energy_wh=follower.connectors[1].energy_wh()))
            await follower.start()
            followers.append(follower)
        return followers

    async def _lead(self, stop: asyncio.Event, show: Callable[[Frame], None], show_every_s: float) -> None:
        assert self.app is not None
        await self.app.supervisor.wait_ready(10)
        self._started = time.monotonic()
        ocpp = f" and {self.options.ocpp_chargers} OCPP chargers" if self.options.ocpp_chargers else ""
        self._note(f"{self.options.chargers} chargers on loopback Modbus TCP{ocpp}, network limit "
                   f"{self.options.limit_a:g} A per phase")
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._cars()), group.create_task(self._script()),
                     group.create_task(self._measure()), group.create_task(self._show(show, show_every_s))]
            await self._until_done(stop)
            for task in tasks:
                task.cancel()

    async def _until_done(self, stop: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(self.options.duration_s):
                await stop.wait()
        except TimeoutError:
            pass

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- the car park ---------------------------------------------------------------------------------------------
    async def _cars(self) -> None:
        next_arrival = self.elapsed() + self.traffic.gap_s()
        while True:
            now = self.elapsed()
            for bay in self.bays:
                if bay.leaves_at is not None and now >= bay.leaves_at:
                    self._leave(bay)
            if now >= next_arrival:
                self._arrive(now)
                next_arrival = now + self.traffic.gap_s()
            await asyncio.sleep(0.2)

    def _arrive(self, now: float) -> None:
        free = [i for i, bay in enumerate(self.bays) if bay.visit is None]
        if not free:
            return
        bay = self.bays[self.traffic.pick(free)]
        visit = self.traffic.visit()
        bay.charger.plug(visit.car)
        bay.visit, bay.leaves_at = visit, now + visit.stay_s
        self._note(f"{visit.car.name} ({visit.model.label}, {visit.car.soc_start:.0%}) plugs into {bay.id}")

    def _leave(self, bay: Bay) -> None:
        if bay.visit is not None and bay.vehicle is not None:
            vehicle = bay.vehicle
            self._note(f"{bay.visit.car.name} leaves {bay.id} at {vehicle.soc:.0%}")
        bay.charger.unplug()
        bay.visit = bay.leaves_at = None

    # -- the scripted moments -------------------------------------------------------------------------------------
    async def _script(self) -> None:
        duration = self.options.duration_s
        cycle = min(duration, CYCLE_S) if duration is not None else CYCLE_S
        moments = script(cycle, self.options.limit_a)
        start = 0.0
        while True:
            for moment in moments:
                await asyncio.sleep(max(0.0, start + moment.at_s - self.elapsed()))
                self._act(moment)
            start += cycle

    def _act(self, moment: Moment) -> None:
        assert self.app is not None
        if moment.kind is MomentKind.LIMIT:
            self.app.supervisor.apply(SetNetworkLimit(moment.limit_a), "demo script, as a BMS would")
        elif moment.kind is MomentKind.SILENT:
            modbus = [b for b in self.bays if b.line is not None]
            charging = [b for b in modbus if b.visit is not None and max(b.site_currents_a()) > 0]
            bay = (charging or modbus)[0]
            if bay.line is not None and bay.line.server is not None:
                bay.line.server.set_fault(1, Fault(FaultKind.SILENT))
                self._silenced = bay
                self._note(f"{bay.id} stops answering (script)")
        elif self._silenced is not None and self._silenced.line is not None and self._silenced.line.server is not None:
            self._silenced.line.server.set_fault(1, Fault(FaultKind.NONE))
            self._note(f"{self._silenced.id} answers again (script)")
            self._silenced = None

    # -- measuring and showing ------------------------------------------------------------------------------------
    def limit_in_force(self) -> PerPhase:
        """The least of the network limit as set (script, or a BMS: its limit stands in for the script's) and every
        other source the gateway applies."""
        assert self.app is not None
        effective = self.app.supervisor.status().effective_limit_a
        setting = min(self.app.settings.config.installation_limit_a, self.app.supervisor.bms.network_a())
        return (min(setting, effective[0]), min(setting, effective[1]), min(setting, effective[2]))

    async def _measure(self) -> None:
        while True:
            totals = [0.0, 0.0, 0.0]
            for bay in self.bays:
                for phase, amps in enumerate(bay.site_currents_a()):
                    totals[phase] += amps
            self._drawn = (totals[0], totals[1], totals[2])
            self._limit = self.limit_in_force()
            self.account.sample(self.elapsed(), self._drawn, self._limit)
            await asyncio.sleep(SAMPLE_S)

    async def _show(self, show: Callable[[Frame], None], every_s: float) -> None:
        while True:
            show(self.frame())
            await asyncio.sleep(every_s)

    def _note(self, text: str) -> None:
        self._events.append(Event(time.time(), "demo", text))
        log.debug("%s", text)

    def frame(self) -> Frame:
        assert self.app is not None
        events = sorted([*self._events, *self.app.supervisor.recent_events()], key=lambda e: e.time_s)
        return Frame(self.elapsed(), self.app.supervisor.status(), self.bays, events, self._drawn, self._limit,
                     self.account, self.app.bms.tcp_address if self.app.bms else None)

    def summary(self) -> dict[str, Any]:
        account = self.account
        return {
            "seed": self.options.seed, "chargers": self.options.chargers,
            "ocpp_chargers": self.options.ocpp_chargers, "speed": self.options.speed,
            "duration_s": round(self.elapsed(), 2), "limit_a": self.options.limit_a,
            "lowest_limit_a": account.lowest_limit_a,
            "peak_a": {f"L{p + 1}": round(account.peak_a[p], 2) for p in range(3)},
            "over_limit_amp_seconds": round(account.over_amp_seconds, 3),
            "grace_s": account.grace_s, "samples": account.samples,
            "units": {bay.id: {"energy_wh": round(bay.energy_wh(), 1)} for bay in self.bays},
        }

