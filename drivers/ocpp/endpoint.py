"""The gateway's OCPP 1.6J endpoint: a websocket server that OCPP chargers connect to as to a central system.

Admission happens before the websocket upgrade, so a charger that is not let in never reaches the OCPP layer:

* the identity is the last segment of the URL path, percent-decoded (OCPP-J §3.1; any prefix such as ``/ocpp/``
  works). An identity that is not configured gets HTTP 404 (errata §3.68);
* HTTP Basic authentication (security profiles 1 and 2): the user must be the identity itself and the password the
  charger's AuthorizationKey. A wrong or missing password gets HTTP 401. The password is compared in constant
  time, and the user part is matched as the known identity followed by a colon, so an identity containing a colon
  cannot shift the split. Guessing is throttled per address and over the endpoint, in a way that still lets a
  charger with the right password in (``drivers.ocpp.admission``): an attempt over the limit gets HTTP 429 unchecked;
* the ``ocpp1.6`` subprotocol is required: a client that does not offer it gets HTTP 400;
* with a certificate and key configured the endpoint speaks TLS only (``wss://``, security profile 2), TLS 1.2 or
  newer.

A charger that connects again replaces its previous connection, which is closed. Every connection is served by
its own handler task (owned by the websockets server, awaited on ``stop``), which owns the task that configures
the charger (``drivers.ocpp.provisioning``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from drivers.aio import cancel_and_wait
from drivers.ocpp.admission import DEFAULT_LIMITS, AdmissionLimits, AuthThrottle
from drivers.ocpp.link import ChargePointLink
from drivers.ocpp.provisioning import provision
from drivers.ocpp.station import ConnectorState, CountingIds, Station, StationSettings, TransactionIds
from drivers.ocpp.throttle import TokenBucket
from drivers.ocpp.wire_log import wire_log

log = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("ocpp1.6")


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Where the endpoint listens and how it answers."""

    host: str = "0.0.0.0"
    port: int = 8180
    """0 lets the system choose (tests); ``OcppEndpoint.port`` is the port in use."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    heartbeat_interval_s: int = 300
    ping_interval_s: float | None = 10.0
    """Websocket pings: a follower whose network silently died is noticed within two intervals."""
    id_tags: frozenset[str] | None = None
    """The local authorisation list; None accepts every idTag (a site without badges)."""
    message_rate_per_s: float = 20.0
    """Messages one connection may have handled per second once ``message_burst`` is spent (``link``)."""
    message_burst: int = 60


def identity_of(path: str) -> str:
    """The charge point identity: the last segment of the URL path, percent-decoded (OCPP-J §3.1)."""
    return unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])


def basic_credentials_ok(header: str, identity: str, password: str) -> bool:
    """Whether an ``Authorization`` header carries Basic credentials ``identity:password``."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    prefix = identity.encode() + b":"
    if not decoded.startswith(prefix):
        return False
    return hmac.compare_digest(decoded[len(prefix):], password.encode())


def server_tls(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer); ``OSError``/``ssl.SSLError`` for unreadable or mismatched files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class OcppEndpoint:
    """The server and the stations it admits. ``async with OcppEndpoint(...) as endpoint:`` runs it."""

    def __init__(self, settings: EndpointSettings, stations: Iterable[StationSettings] = (), *,
                 ids: TransactionIds | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 refresh: Callable[[], Iterable[StationSettings]] | None = None,
                 admission: AdmissionLimits = DEFAULT_LIMITS) -> None:
        """``refresh``, if given, is asked for the stations to admit at every connection attempt, so a charger
        added to or removed from the site at run time is admitted or refused without a restart. ``admission``:
        how many password guesses are checked (``drivers.ocpp.admission``)."""
        self.settings = settings
        self._refresh = refresh
        self._ids = ids if ids is not None else CountingIds()
        self._clock = clock
        self._wall = wall
        self.stations: dict[str, Station] = {}
        self._server: Server | None = None
        self.auth = AuthThrottle(clock, admission)
        self._log_gate = TokenBucket(0.1, 5)
        self.configure(stations)

    # -- stations ------------------------------------------------------------------------------------------------
    def configure(self, stations: Iterable[StationSettings]) -> None:
        """Admit exactly these charge points; a station that stays keeps its state and connection."""
        wanted = {s.charge_point_id: s for s in stations}
        for cp_id, station in list(self.stations.items()):
            if cp_id not in wanted:
                del self.stations[cp_id]
                link = station.link
                if isinstance(link, ChargePointLink):
                    log.info("%s removed from the site: dropping its connection", cp_id)
                    link.connection.transport.close()  # its handler sees the close and ends
        for cp_id, settings in wanted.items():
            known = self.stations.get(cp_id)
            if known is None:
                self.stations[cp_id] = Station(settings, ids=self._ids, authorize=self._authorize,
                                               clock=self._clock, wall=self._wall)
            elif known.settings != settings:
                known.settings = settings
                if settings.stack_level is not None:
                    known.stack_level = settings.stack_level
                known.connectors = {c: known.connectors.get(c) or ConnectorState() for c in settings.connectors}

    def _authorize(self, id_tag: str) -> str:
        tags = self.settings.id_tags
        return "Accepted" if tags is None or id_tag in tags else "Invalid"

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        context = None
        if self.settings.tls_cert_file is not None and self.settings.tls_key_file is not None:
            context = server_tls(self.settings.tls_cert_file, self.settings.tls_key_file)
        ping = self.settings.ping_interval_s
        self._server = await serve(self._serve_connection, self.settings.host, self.settings.port, ssl=context,
                                   subprotocols=[SUBPROTOCOL], process_request=self._admit,
                                   ping_interval=ping, ping_timeout=ping, logger=wire_log("websockets"))
        log.info("OCPP endpoint listening on %s", self.url("<chargePointId>"))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> OcppEndpoint:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OCPP endpoint is not running")
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, charge_point_id: str) -> str:
        scheme = "wss" if self.settings.tls_cert_file is not None else "ws"
        port = self.port if self._server is not None else self.settings.port
        return f"{scheme}://{self.settings.host}:{port}/{charge_point_id}"

    # -- connections ---------------------------------------------------------------------------------------------
    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._refresh is not None:
            self.configure(self._refresh())
        cp_id = identity_of(request.path)
        address = str(connection.remote_address[0]) if connection.remote_address else "?"
        station = self.stations.get(cp_id)
        if station is None:
            self.auth.failed(address)
            self._warn("OCPP endpoint: refused %r from %s: not in the site file", request.path, address)
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point\n")
        password = station.settings.password
        if password is None:
            return None
        if not self.auth.may_check(cp_id, address):
            self._warn("OCPP endpoint: refused %s from %s unchecked: too many wrong passwords (%d refused so far)",
                       cp_id, address, self.auth.refused)
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too many failed attempts\n")
            response.headers["Retry-After"] = str(int(self.auth.limits.trickle_s))
            return response
        if not basic_credentials_ok(request.headers.get("Authorization", ""), cp_id, password):
            self.auth.failed(address)
            self._warn("OCPP endpoint: refused %s from %s: wrong or missing credentials (%d so far)", cp_id,
                       address, self.auth.failures)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "Wrong or missing credentials\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="powershare", charset="UTF-8"'
            return response
        self.auth.succeeded(cp_id, address)
        return None

    def _warn(self, text: str, *args: object) -> None:
        """Refusals are logged, a few and then one every 10 s: a flood of attempts must not flood the log."""
        if self._log_gate.take(self._clock()):
            log.warning(text, *args)

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        station = self.stations.get(identity_of(connection.request.path))
        if station is None:  # removed between the handshake and now
            await connection.close(1008, "not configured")
            return
        link = ChargePointLink(station, connection, heartbeat_interval_s=self.settings.heartbeat_interval_s,
                               wall=self._wall, rate_per_s=self.settings.message_rate_per_s,
                               burst=self.settings.message_burst)
        previous = station.attach(link)
        if isinstance(previous, ChargePointLink):
            log.info("%s connected again; closing its previous connection", link.id)
            previous.closed.set()
            await previous.connection.close(1000, "replaced by a new connection")
        log.info("%s connected from %s", link.id, connection.remote_address)
        configuring = asyncio.create_task(provision(station, link),
                                          name=f"configure {link.id}")
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            link.closed.set()
            await cancel_and_wait(configuring)
            station.detach(link)
            log.info("%s disconnected", link.id)
