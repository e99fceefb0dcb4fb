"""One running gateway assembled from a site file: settings, buses, drivers, the supervisor and its faces.

``powershare run`` and ``powershare demo`` both start the gateway through ``GatewayApp``, so the demo shows the
product and not a look-alike. The app owns what it builds and tears it down in reverse order: the faces stop
taking commands first, then the supervisor cancels and awaits its tasks, then the buses are closed.

The history (sessions, events, current per phase: ``gateway.runtime.history``) starts after the supervisor and
before the faces, which read it, and stops after them with a last write.

Faces are anything with ``start`` and ``stop`` built from the app. The BMS face comes from the site file's ``bms``
section; other faces (OCPP, web) are passed as ``extra_faces`` factories, which is how they join ``run`` and the
demo without either changing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.transport import BusOptions
from gateway.faces.bms.server import BmsServer
from gateway.runtime.history.service import HISTORY_FILE, History
from gateway.runtime.ocpp_wiring import PersistentIds
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import SiteWiring
from gateway.site.config import SiteConfig
from gateway.site.settings import SETTINGS_FILE, SiteSettings
from gateway.site.store import JsonStore
from gateway.site.validation import site_rules

log = logging.getLogger(__name__)
BMS_LIMIT_FILE = "bms-limit.json"
"""The BMS's network limit and watchdog (``gateway.runtime.bms_limit``), saved coalesced."""
TRANSACTION_IDS_FILE = "ocpp-followers.json"
"""The counter of transaction ids issued to OCPP followers (unique across restarts)."""


class Face(Protocol):
    """An integration face (BMS, OCPP, web): started after the supervisor, stopped before it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


FaceFactory = Callable[["GatewayApp"], Face | None]
"""Builds a face for the app, or None where its section is absent from the configuration in force."""


@dataclass
class GatewayApp:
    registry: ProfileRegistry
    settings: SiteSettings
    pool: BusPool
    supervisor: Supervisor
    wiring: SiteWiring
    history: History
    faces: list[Face] = field(default_factory=list)
    bms: BmsServer | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    """The site file's directory: where the relative paths in it start (``resolve``)."""
    _started: list[Face] = field(default_factory=list, init=False)
    _wiring_started: bool = field(default=False, init=False)

    @classmethod
    def build(cls, site: SiteConfig, registry: ProfileRegistry, *, state_dir: Path | None,
              extra_faces: Sequence[FaceFactory] = (), bus_options: BusOptions | None = None,
              base_dir: Path | None = None) -> GatewayApp:
        """The gateway for the site file ``site`` (already checked) with the settings changed at run time, which
        persist in ``state_dir`` (None: not at all): the meter, the BMS face and the faces are built from
        ``settings.config``, the site file with those changes. ``base_dir``: the site file's directory, where its
        relative paths (OCPP password files, TLS files) start; the working directory if None."""
        base = base_dir if base_dir is not None else Path.cwd()
        store = JsonStore(state_dir / SETTINGS_FILE) if state_dir is not None else None
        settings = SiteSettings(site, registry.nameplate_a, store, rules=site_rules(registry, base))
        config = settings.config
        pool = BusPool(bus_options)
        ids = PersistentIds(JsonStore(state_dir / TRANSACTION_IDS_FILE)) if state_dir is not None else None
        wiring = SiteWiring(registry, settings, pool, base, ids=ids)
        meter = wiring.modbus.make_meter(config.meter) if config.meter is not None else None
        supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings, meter=meter,
                                bms_store=JsonStore(state_dir / BMS_LIMIT_FILE) if state_dir is not None else None)
        history = History(state_dir / HISTORY_FILE if state_dir is not None else None, supervisor,
                          tasks=supervisor.tasks, flush_interval_s=site.history.flush_interval_s)
        app = cls(registry, settings, pool, supervisor, wiring, history, base_dir=base)
        if config.bms is not None and config.bms.enabled:
            app.bms = BmsServer(supervisor, config.bms, tasks=supervisor.tasks)
            app.faces.append(app.bms)
        app.faces += [face for face in (make(app) for make in extra_faces) if face is not None]
        return app

    async def start(self) -> None:
        """The OCPP followers' endpoint (if the site has one), polling, the history, then the faces; if something
        cannot start, everything already started is stopped again."""
        await self.wiring.start()
        self._wiring_started = True
        try:
            await self.supervisor.start()
            await self.history.start()
            for face in self.faces:
                await face.start()
                self._started.append(face)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        while self._started:
            face = self._started.pop()
            try:
                await face.stop()
            except Exception:  # one face failing to stop must not keep the others and the buses open
                log.exception("stopping %s failed", type(face).__name__)
        try:
            await self.history.stop()
        except Exception:  # the history must not keep the chargers' buses open
            log.exception("stopping the history failed")
        try:
            await self.supervisor.stop()
        finally:  # the buses are closed whatever happened before
            try:
                if self._wiring_started:
                    self._wiring_started = False
                    await self.wiring.stop()
            finally:
                await self.pool.close()

    async def __aenter__(self) -> GatewayApp:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
