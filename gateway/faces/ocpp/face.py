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
    return lambda app: _client(app, options, state_dir)


def upstream_face(state_dir: Path) -> FaceFactory:
    """The client for the ``ocpp:`` section in force (the site file with the settings changed at run time), or no
    face where there is none: what ``powershare run`` adds."""

    def make(app: GatewayApp) -> OcppClient | None:
        options = app.settings.config.ocpp
        return _client(app, options, state_dir) if options is not None else None

    return make


def _client(app: GatewayApp, options: OcppConfig, state_dir: Path) -> OcppClient:
    return OcppClient(app.supervisor, app.settings.config, _from_site_dir(options, app.base_dir),
                      state_dir=state_dir, nameplate_of=app.registry.nameplate_a, tasks=app.supervisor.tasks)


def _from_site_dir(options: OcppConfig, base_dir: Path) -> OcppConfig:
    """The key and certificate files with relative paths made to start at the site file's directory, like every
    other path in it: a service's working directory is "/", not where its site file is."""
    files = {name: base_dir / value for name in ("password_file", "ca_file", "client_cert", "client_key")
             if (value := getattr(options, name)) is not None}
    return options.model_copy(update=files)
