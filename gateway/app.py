"""One running gateway assembled from a site file: settings, buses, drivers, the supervisor and its faces.

``powershare run`` and ``powershare demo`` both start the gateway through ``GatewayApp``, so the demo shows the
product and not a look-alike. The app owns what it builds and tears it down in reverse order: the faces stop
taking commands first, then the supervisor cancels and awaits its tasks, then the buses are closed.

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
from gateway.bms.server import BmsServer
from gateway.config import SiteConfig
from gateway.settings import SiteSettings
from gateway.store import JsonStore
from gateway.supervisor import Supervisor
from gateway.wiring import ModbusWiring

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"


class Face(Protocol):
    """An integration face (BMS, OCPP, web): started after the supervisor, stopped before it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


FaceFactory = Callable[["GatewayApp"], Face]


@dataclass
class GatewayApp:
    registry: ProfileRegistry
    settings: SiteSettings
    pool: BusPool
    supervisor: Supervisor
    faces: list[Face] = field(default_factory=list)
    bms: BmsServer | None = None
    _started: list[Face] = field(default_factory=list, init=False)

    @classmethod
    def build(cls, site: SiteConfig, registry: ProfileRegistry, *, state_dir: Path | None,
              extra_faces: Sequence[FaceFactory] = (), bus_options: BusOptions | None = None) -> GatewayApp:
        """The gateway for ``site`` (already checked); settings persist in ``state_dir`` (None: not at all)."""
        store = JsonStore(state_dir / SETTINGS_FILE) if state_dir is not None else None
        settings = SiteSettings(site, registry.nameplate_a, store)
        pool = BusPool(bus_options)
        wiring = ModbusWiring(registry, settings, pool)
        meter = wiring.make_meter(site.meter) if site.meter is not None else None
        supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings, meter=meter)
        app = cls(registry, settings, pool, supervisor)
        if site.bms is not None and site.bms.enabled:
            app.bms = BmsServer(supervisor, site.bms)
            app.faces.append(app.bms)
        app.faces += [make(app) for make in extra_faces]
        return app

    async def start(self) -> None:
        """Start polling, then the faces; if a face cannot start, everything already started is stopped again."""
        await self.supervisor.start()
        try:
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
        await self.supervisor.stop()
        await self.pool.close()

    async def __aenter__(self) -> GatewayApp:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
