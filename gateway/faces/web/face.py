"""The web page as one of the gateway's faces: how ``powershare run`` and ``powershare demo`` add it.

The face reads a follower live through the gateway's own buses (``FollowerProbe`` over the app's ``BusPool``), so a
probe of a unit on a line the gateway already drives waits its turn on that line instead of colliding with a poll.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client.core import Metric

from gateway.faces.ocpp.client import OcppClient
from gateway.faces.web.metrics import MetricsSource, ocpp_client_metrics
from gateway.faces.web.server import WebServer
from gateway.runtime.app import Face, FaceFactory, GatewayApp
from gateway.runtime.follower_probe import FollowerProbe
from gateway.site.config import WebConfig


class WebFace:
    """A ``WebServer`` that may be given its password up front (the demo) and says where it serves."""

    def __init__(self, server: WebServer, password: str | None,
                 announce: Callable[[WebServer], None] | None) -> None:
        self.server = server
        self._password = password
        self._announce = announce

    async def start(self) -> None:
        if self._password is not None:
            await self.server.set_password(self._password)
        await self.server.start()
        if self._announce is not None and self.server.port is not None:
            self._announce(self.server)

    async def stop(self) -> None:
        await self.server.stop()


def _faces_metrics(app: GatewayApp) -> MetricsSource:
    """The OCPP client's outbox and errors, looked up at each scrape (faces are built after this one may be)."""

    def collect() -> Iterable[Metric]:
        for face in app.faces:
            if isinstance(face, OcppClient):
                yield from ocpp_client_metrics(len(face.station.outbox), face.errors)

    return collect


def web_face(state_dir: Path, *, config: WebConfig | None = None, password: str | None = None,
             announce: Callable[[WebServer], None] | None = None,
             restart: Callable[[str], None] | None = None) -> FaceFactory:
    """The factory ``GatewayApp.build`` takes; ``config`` replaces the site file's ``web`` section (the demo);
    ``restart`` lets the page restart the gateway (``powershare run``)."""

    def make(app: GatewayApp) -> Face:
        site = app.settings.config
        web = config if config is not None else site.web
        tls = {name: str(app.base_dir / value) for name in ("tls_cert", "tls_key")
               if (value := getattr(web, name)) is not None}  # relative to the site file, like its other paths
        site = site.model_copy(update={"web": web.model_copy(update=tls)})
        server = WebServer(app.supervisor, site, state_dir, probe=FollowerProbe(app.registry, app.pool),
                           profiles=app.registry, history=app.history, tasks=app.supervisor.tasks,
                           metrics_sources=[_faces_metrics(app)], restart=restart)
        return WebFace(server, password, announce)

    return make
