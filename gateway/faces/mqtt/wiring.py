"""The MQTT face as a face of ``GatewayApp``: for ``powershare run`` (a site file with ``mqtt:``) and
``powershare demo --mqtt URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from gateway.faces.mqtt.face import MqttFace
from gateway.runtime.app import FaceFactory, GatewayApp
from gateway.site.config import MqttConfig


def mqtt_face(config: MqttConfig, base_dir: Path) -> FaceFactory:
    """``base_dir``: where relative password and TLS files start (the site file's directory). Building the face
    raises ``MqttSetupError`` when the password or a TLS file cannot be loaded."""

    def make(app: GatewayApp) -> MqttFace:
        return MqttFace(app.supervisor, config, app.settings.config.name, base_dir=base_dir,
                        tasks=app.supervisor.tasks)

    return make


def config_from_url(url: str) -> MqttConfig:
    """``mqtt://[user[:password]@]host[:port][/prefix]`` (``mqtts://`` for TLS) as an ``mqtt:`` section;
    ``ValueError`` with a message naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or "?" in url or "#" in url:
        raise ValueError(f"--mqtt: {url.split('@')[-1]!r} is not mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("--mqtt: the port must be 1..65535") from None
    tls = parts.scheme == "mqtts"
    try:
        return MqttConfig(host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
                          username=unquote(parts.username) if parts.username else None,
                          password=unquote(parts.password) if parts.password else None,
                          topic_prefix=parts.path.strip("/") or "powershare")
    except ValidationError as exc:  # its text would quote the input; say only which part is wrong
        raise ValueError("--mqtt: " + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'url'}: {e['msg']}"
                                                for e in exc.errors())) from None
