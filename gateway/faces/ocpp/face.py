"""The OCPP client as a face of ``GatewayApp``, for ``powershare run`` (a site file with ``ocpp:``) and
``powershare demo --ocpp-url``: built from the app's supervisor and site, started after the supervisor and stopped
before it."""

from __future__ import annotations

from pathlib import Path

from gateway.faces.ocpp.client import OcppClient
from gateway.runtime.app import FaceFactory, GatewayApp
from gateway.site.config import OcppConfig


def ocpp_face(options: OcppConfig, state_dir: Path) -> FaceFactory:
    """``state_dir``: the gateway's state directory (``options.state_dir`` is relative to it). Building the face
    raises ``SecuritySetupError`` when the password or a TLS file cannot be loaded."""

    def make(app: GatewayApp) -> OcppClient:
        return OcppClient(app.supervisor, app.settings.config, options, state_dir=state_dir,
                          nameplate_of=app.registry.nameplate_a, tasks=app.supervisor.tasks)

    return make
