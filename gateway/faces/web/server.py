"""The web face's lifecycle: a uvicorn server inside the gateway's own event loop, owned, started and stopped.

uvicorn normally owns the process: it installs signal handlers and configures logging. Here the gateway owns both,
so the server is run with neither (``capture_signals`` is a no-op, ``log_config=None``), on a socket this module
binds itself, so that "address in use" is an error at ``start`` and port 0 (tests) reports the port it got.
Forwarded-for headers are ignored: the brute-force delay must see the real client. The application is wrapped in
the request-size limit and the security headers (``middleware``), the connections are capped and idle ones closed
(``connections``), and no ``server`` header names the software.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import uvicorn

from drivers.profile import ProfileRegistry
from gateway.errors import StartError, StoppedError
from gateway.faces.web.api import ApiContext, build_app
from gateway.faces.web.auth import Guard
from gateway.faces.web.connections import HEAD_TIMEOUT_S, MAX_CONNECTIONS, capped_protocol
from gateway.faces.web.live import Broadcast, follow
from gateway.faces.web.metrics import GatewayCollector, MetricsSource, registry_for
from gateway.faces.web.middleware import BodyLimit, SecurityHeaders
from gateway.i18n.text import tr
from gateway.runtime.commands import GatewayControl
from gateway.runtime.file_limits import face_cap
from gateway.runtime.follower_probe import Probe
from gateway.runtime.history.service import History
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.config import ChargerConfig, SiteConfig
from gateway.site.settings import SiteSettings
from gateway.site.store import StoreError

log = logging.getLogger("gateway.faces.web")

START_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 3
FOLLOW_TASK = "web follow"
SERVE_TASK = "web serve"
MIN_BACKLOG = 16
"""Connections waiting to be accepted: the connection cap, but at least this. asyncio accepts up to a backlog's
worth in one go before the cap sees them, so uvicorn's default (2048) would let a burst take that many file handles
at once."""


class WebStartError(StartError):
    """The face could not serve (address in use, unreadable certificate); the message says what and where."""


class WebServerEnded(StoppedError):
    """The HTTP server stopped serving without being asked to: a crash of the ``web serve`` task."""


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The gateway handles SIGINT/SIGTERM itself and stops this server with everything else."""
        yield


class WebServer:
    """The installer's page and API for one gateway; whoever builds the gateway ``start``s and ``stop``s it.

    ``followers`` lists the configured followers for the page (profile, address); by default the supervisor's
    settings. ``clock`` (monotonic seconds) times sessions and the brute-force delay.
    """

    def __init__(self, control: GatewayControl, config: SiteConfig, state_dir: Path, *, probe: Probe,
                 profiles: ProfileRegistry, history: History,
                 followers: Callable[[], Sequence[ChargerConfig]] | None = None,
                 clock: Callable[[], float] = time.monotonic, tasks: TaskSupervisor | None = None,
                 max_connections: int | None = None, head_timeout_s: float = HEAD_TIMEOUT_S,
                 metrics_sources: Sequence[MetricsSource] = (), restart: Callable[[str], None] | None = None) -> None:
        """``history``: the gateway's (``gateway.runtime.history``), which the history pages and CSV files read;
        ``tasks``: who owns the live-update task (the gateway's, so a crash shows as FAULT and is restarted); a
        private one if None. ``restart``: how the page restarts the gateway (``gateway.runtime.restart``); None
        where it cannot."""
        self.config = config.web
        self._tasks = tasks if tasks is not None else TaskSupervisor()
        self._following = False
        self._cap = max_connections if max_connections is not None else face_cap(MAX_CONNECTIONS)
        self._protocol = capped_protocol(self._cap, head_timeout_s)
        self._control = control
        self._broadcast = Broadcast()
        try:
            self.guard = Guard(state_dir, clock, self.config.session_timeout_s)
        except (ValueError, StoreError) as exc:
            raise WebStartError(f"web: {exc}") from exc
        followers = followers or _followers_of(control, config)
        self._context = ApiContext(
            control=control, guard=self.guard, profiles=profiles, probe=probe, followers=followers,
            site=_site_of(control, config),
            site_name=config.name, read_access=self.config.read_access, secure_cookie=self.config.tls_cert is not None,
            history=history, broadcast=self._broadcast,
            metrics=registry_for(GatewayCollector(control, followers, metrics_sources)),
            settings=_settings_of(control), restart=restart, instance=secrets.token_hex(8))
        self.app = build_app(self._context)
        self.asgi = SecurityHeaders(BodyLimit(self.app))
        """What is served: the application inside the size limit and the security headers."""
        self._server: _EmbeddedServer | None = None
        self._uvicorn: uvicorn.Config | None = None
        self._serving = asyncio.Event()
        """Clear while a server runs: what ``stop`` waits for before it cancels the task."""
        self._serving.set()
        self._stopping = False
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def setup_code(self) -> str | None:
        """The one-time code that sets the first password; None once a password is set."""
        return self.guard.setup_code

    async def set_password(self, password: str) -> None:
        """Set the installer password directly (the demo prints it); raises ``StoreError`` if it cannot be saved."""
        await self.guard.passwords.set(password)
        self.guard.setup_code = None

    @property
    def scheme(self) -> str:
        return "https" if self.config.tls_cert else "http"

    @property
    def url(self) -> str:
        """Where this machine reaches the page (a wildcard listen address becomes the loopback address)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.config.host, self.config.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}/"

    async def start(self) -> None:
        """Listen and serve; raises ``WebStartError``. With ``web.enabled`` false, serves nothing."""
        if not self.config.enabled:
            log.info("web page disabled (web.enabled: false)")
            return
        sock = _bind(self.config.host, self.config.port)
        config = uvicorn.Config(self.asgi, log_config=None, access_log=False, lifespan="off", proxy_headers=False,
                                ssl_certfile=self.config.tls_cert, ssl_keyfile=self.config.tls_key,
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False,
                                http=self._protocol, h11_max_incomplete_event_size=16 * 1024,
                                backlog=max(MIN_BACKLOG, self._cap))
        try:
            config.load()
        except (OSError, ValueError) as exc:
            sock.close()
            raise WebStartError(f"web: cannot use the TLS certificate or key: {exc}") from exc
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        self._uvicorn = config
        self._stopping = False
        self._tasks.start(FOLLOW_TASK, functools.partial(
            follow, self._control, self._context.site_name, self._broadcast))
        self._following = True
        self._tasks.start(SERVE_TASK, self._serve)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while self._server is None or not self._server.started:
                    down = self._tasks.down.get(SERVE_TASK)
                    if down is not None:
                        raise WebStartError(f"web: the server stopped while starting ({down})")
                    await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise
        log.info("web page on %s://%s:%d/", self.scheme, self.config.host, self.port)
        if self.setup_code is not None:
            log.warning(tr("web.setup_code", url=self.url, code=self.setup_code))

    async def stop(self) -> None:
        """End every live stream, let requests in flight finish (at most a few seconds), then stop."""
        self._stopping = True
        self._broadcast.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._following:
            self._following = False
            await self._tasks.stop(FOLLOW_TASK)
        with contextlib.suppress(TimeoutError):  # should_exit lets requests in flight finish
            async with asyncio.timeout(GRACEFUL_SHUTDOWN_S + 2):
                await self._serving.wait()
        await self._tasks.stop(SERVE_TASK)
        self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _serve(self) -> None:
        """Serve until ``stop``: the task ``web serve``, owned by the gateway's task supervisor.

        uvicorn ending on its own (a bug in it or in what it runs, or its giving up) is a crash like any other
        task's: it is logged, the gateway shows FAULT, and the task supervisor starts a new server after its
        backoff, listening again on the same port (the crashed server's socket is closed here and a new one bound).
        """
        if self._stopping or self._uvicorn is None:
            return
        if self._socket is None:
            self._socket = _bind(self.config.host, self.port or 0)
        server = self._server = _EmbeddedServer(self._uvicorn)
        self._serving.clear()
        try:
            await server.serve(sockets=[self._socket])
        except SystemExit as exc:  # uvicorn's way of giving up; it must not end the gateway's process
            raise WebServerEnded("web: the HTTP server gave up (see the log above)") from exc
        finally:
            self._serving.set()
            if not self._stopping:  # a crashed server did not close what it listened on; stop it listening
                for listener in getattr(server, "servers", ()):
                    listener.close()
                if self._socket is not None:
                    self._socket.close()
                    self._socket = None
        if not self._stopping:
            raise WebServerEnded("web: the HTTP server stopped serving by itself")


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebStartError(f"web: cannot listen on {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WebStartError(f"web: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _followers(settings: SiteSettings) -> Callable[[], Sequence[ChargerConfig]]:
    return lambda: settings.config.chargers


def _settings_of(control: GatewayControl) -> SiteSettings | None:
    settings = getattr(control, "settings", None)
    return settings if isinstance(settings, SiteSettings) else None


def _site_of(control: GatewayControl, config: SiteConfig) -> Callable[[], SiteConfig]:
    """What the gateway starts with next time (the supervisor's saved settings) where it has them; otherwise the
    site file."""
    settings = _settings_of(control)
    if settings is not None:
        return lambda: settings.saved
    return lambda: config


def _followers_of(control: GatewayControl, config: SiteConfig) -> Callable[[], Sequence[ChargerConfig]]:
    """The supervisor's live settings where it has them; otherwise the site file's chargers."""
    settings = getattr(control, "settings", None)
    if isinstance(settings, SiteSettings):
        return _followers(settings)
    chargers = config.chargers
    return lambda: chargers
