"""The OCPP 1.6 security profiles (white paper "Improved security for OCPP 1.6-J", edition 3): what goes into the
WebSocket handshake, and keeping the authorization key out of every log.

* Profile 1: HTTP Basic authentication over ``ws://``; profile 2: the same over TLS (``wss://``), the central
  system's certificate checked against ``ca_file`` (or the system's trust store) and its host name; profile 3: TLS
  with a client certificate instead of a password. TLS 1.2 at least, no compression (the ``ssl`` module's
  default).
* The Basic user name is the charge point id exactly as in the URL; the password is the AuthorizationKey, sent as
  the characters written (research §4.2: most central systems compare the string).
* The key is sent in an ``Authorization`` header, never in the URL, because URLs get logged. ``websockets`` logs
  every request header at DEBUG level, and a central system's ChangeConfiguration(AuthorizationKey) would carry a
  key in a logged frame, so every logger of the connection is wrapped in ``RedactingLogger``.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import ssl
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway.errors import StartError
from gateway.site.config import OcppConfig

REDACTED = "<redacted>"
_KEY_IN_FRAME = re.compile(r'("key"\s*:\s*"AuthorizationKey"\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"')


class SecuritySetupError(StartError):
    """The password or a certificate cannot be loaded; the message names the file or variable, never the key."""


def connection_url(options: OcppConfig) -> str:
    """``<url>/<chargePointId>``, the identity percent-encoded (OCPP-J §3.1)."""
    return options.url.rstrip("/") + "/" + quote(options.charge_point_id, safe="")


def load_password(options: OcppConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The AuthorizationKey for profiles 1 and 2 (from the site file, a file or an environment variable)."""
    if options.password is not None:
        return options.password
    if options.password_file is not None:
        try:
            key = options.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecuritySetupError(f"ocpp.password_file {options.password_file}: {exc.strerror or exc}") from None
        where = f"ocpp.password_file {options.password_file}"
    elif options.password_env is not None:
        env = os.environ if environ is None else environ
        if options.password_env not in env:
            raise SecuritySetupError(f"ocpp.password_env: the environment has no {options.password_env}")
        key = env[options.password_env].strip()
        where = f"ocpp.password_env {options.password_env}"
    else:
        return None
    if not 16 <= len(key) <= 40 or not key.isascii() or not key.isprintable():
        raise SecuritySetupError(f"{where}: the key must be 16 to 40 printable ASCII characters")
    return key


def basic_auth_header(charge_point_id: str, key: str) -> str:
    token = base64.b64encode(f"{charge_point_id}:{key}".encode()).decode("ascii")
    return f"Basic {token}"


def tls_context(options: OcppConfig) -> ssl.SSLContext | None:
    """The client TLS context for a ``wss://`` url: server certificate and host name checked, TLS 1.2 or later,
    the client certificate for profile 3."""
    if not options.url.startswith("wss://"):
        return None
    try:
        context = ssl.create_default_context(cafile=_path(options.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if options.client_cert is not None:
            context.load_cert_chain(str(options.client_cert), _path(options.client_key))
    except (OSError, ssl.SSLError) as exc:
        raise SecuritySetupError(f"ocpp TLS files (ca_file, client_cert, client_key): {exc}") from None
    return context


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """Logs through ``logger`` with the key, its Basic-auth token, any ``Authorization`` header value and any
    AuthorizationKey value in a ChangeConfiguration frame replaced by ``<redacted>``."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(s for s in secrets if s)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return self._clean(msg), kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        cleaned = [self._clean(a) for a in args]
        for i, arg in enumerate(args[:-1]):
            if isinstance(arg, str) and arg.lower() in ("authorization", "proxy-authorization"):
                cleaned[i + 1] = REDACTED
        kwargs.setdefault("stacklevel", 3)  # the caller of .warning() etc., not this adapter
        self.logger.log(level, self._clean(msg), *cleaned, **kwargs)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return value if isinstance(value, int | float) or value is None else self._clean(str(value))
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return _KEY_IN_FRAME.sub(lambda m: m.group(1) + f'"{REDACTED}"', value)
