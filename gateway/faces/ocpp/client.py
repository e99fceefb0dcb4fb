"""The gateway as one OCPP 1.6J charge point: the asyncio shell around ``Station``.

``OcppClient(control, site, state_dir=..., nameplate_of=...)`` registers the station's limits with the supervisor
(``add_limit_provider``) at once, so installed charging profiles apply from the first control step, connected or
not. ``start()`` runs three tasks, all owned here and cancelled and awaited by ``stop()``:

* the site watcher: every read-model snapshot (``control.updates()``) goes to ``Station.observe``; transactions
  start and stop and meter values are queued whether or not the central system is reachable;
* the link: connect to ``<url>/<chargePointId>`` with the ``ocpp1.6`` subprotocol (a server that picks none is
  refused), BootNotification first (Pending: retry after its interval, answering the central system's calls
  meanwhile; Rejected: disconnect and retry after its interval), then StatusNotification for connector 0 and every
  connector, Heartbeat when idle, and the outbox delivered in order. A lost connection is retried with capped
  exponential backoff;
* the authoriser: Authorize.req for idTags the sessions need checked, or the local decision when offline.

Power sharing never depends on any of this: the limits are evaluated by the supervisor from the persisted profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from drivers.aio import cancel_and_wait
from gateway import __version__
from gateway.core.limits import LimitProvider
from gateway.errors import PeerError
from gateway.faces.ocpp.authorization import decide
from gateway.faces.ocpp.connector_status import ChargePointStatus
from gateway.faces.ocpp.payload import format_time
from gateway.faces.ocpp.rpc import CallErrorReceived, ConnectionLost, RpcEndpoint
from gateway.faces.ocpp.security import (
    RedactingLogger,
    basic_auth_header,
    connection_url,
    load_password,
    tls_context,
)
from gateway.faces.ocpp.sessions import AuthorizeTag
from gateway.faces.ocpp.station import SELF_CHECKED, Reconnect, Station, Trigger
from gateway.runtime.commands import GatewayControl
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.config import NameplateLookup, OcppConfig, SiteConfig

log = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("ocpp1.6")
DEFAULT_RETRY_S = 60.0
"""Wait before another BootNotification when the central system gives no interval (Pending, Rejected, error)."""
DRAIN_S = 10.0
"""After a Reset, how long the queued StopTransactions may take before the connection is closed anyway."""


class OcppGateway(GatewayControl, Protocol):
    """The supervisor as the OCPP face needs it: the faces' interface plus a hook for its limits."""

    def add_limit_provider(self, provider: LimitProvider) -> None: ...


class BootRejected(PeerError):
    def __init__(self, retry_s: float) -> None:
        super().__init__(f"BootNotification rejected; retrying in {retry_s:g} s")
        self.retry_s = retry_s


class ResetRequested(Exception):
    """A Reset was carried out: reconnect at once and boot again."""


def backoff_s(attempt: int, first_s: float, most_s: float) -> float:
    """Capped exponential backoff: first_s, 2 first_s, 4 first_s, ... at most most_s."""
    return min(most_s, first_s * float(2 ** min(attempt, 30)))


async def _first_done(*coros: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines until the first ends; cancel and await the rest; re-raise what the first raised."""
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class OcppClient:
    def __init__(self, control: OcppGateway, site: SiteConfig, options: OcppConfig | None = None, *,
                 state_dir: Path, nameplate_of: NameplateLookup, wall: Callable[[], float] = time.time,
                 environ: Mapping[str, str] | None = None, tasks: TaskSupervisor | None = None) -> None:
        """``options``: the site file's ``ocpp:`` section unless given. ``state_dir``: the gateway's state
        directory (``options.state_dir`` is relative to it). Raises ``SecuritySetupError`` when the password or a
        TLS file cannot be loaded. ``tasks``: who owns the client's loops (the gateway's, so a crash shows as FAULT and
        never stops control); a private one if None."""
        if options is None:
            if site.ocpp is None:
                raise ValueError("the site file has no ocpp: section")
            options = site.ocpp
        self.options = options
        self._control = control
        self._wall = wall
        key = load_password(options, environ)
        self._tls = tls_context(options)
        self._headers: dict[str, str] = {}
        secrets: tuple[str, ...] = ()
        if key is not None:
            header = basic_auth_header(options.charge_point_id, key)
            self._headers["Authorization"] = header
            secrets = (key, header.split(" ", 1)[1])
        self._log = RedactingLogger(log, secrets)
        self._ws_log = RedactingLogger(logging.getLogger("websockets.client"), secrets)
        self.url = connection_url(options)
        directory = options.state_dir if options.state_dir.is_absolute() else state_dir / options.state_dir
        self.station = Station(site, options, directory, nameplate_of, wall)
        control.add_limit_provider(self.station.limits)
        self._tasks = tasks if tasks is not None else TaskSupervisor()
        self._task_names: list[str] = []
        self._rpc: RpcEndpoint | None = None
        self._booted = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._drained = asyncio.Event()
        self._attempts: dict[int, int] = {}
        self._link_note: str | None = None
        self.errors: dict[str, int] = {"connection": 0, "callerror": 0}
        """Failed connections and CALLERRORs received for queued messages, since start (``/metrics``)."""

    # --- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        loops = {"ocpp site": self._watch_site, "ocpp link": self._run_link, "ocpp authorise": self._authorize_loop}
        for name, loop in loops.items():
            self._tasks.start(name, loop)
            self._task_names.append(name)

    async def stop(self) -> None:
        while self._task_names:
            await self._tasks.stop(self._task_names.pop())
        self.station.close()

    @property
    def booted(self) -> bool:
        """Connected, and the central system accepted our BootNotification."""
        return self._booted.is_set()

    async def wait_booted(self) -> None:
        await self._booted.wait()

    # --- the site ------------------------------------------------------------------------------------------------

    async def _watch_site(self) -> None:
        async for status in self._control.updates():
            self.station.observe(status)

    # --- the link ------------------------------------------------------------------------------------------------

    def _note(self, text: str, level: int = logging.WARNING) -> None:
        """Log a change of the link's state once, not every retry."""
        if text != self._link_note:
            self._link_note = text
            self._log.log(level, "%s", text)

    async def _run_link(self) -> None:
        attempt = 0
        while True:
            delay: float | None = None
            try:
                async with connect(self.url, subprotocols=[SUBPROTOCOL], additional_headers=self._headers,
                                   ssl=self._tls, proxy=None, user_agent_header=f"powershare/{__version__}",
                                   open_timeout=self.options.response_timeout_s, logger=self._ws_log,
                                   ping_interval=self._ping_s(), ping_timeout=self._ping_s()) as ws:
                    if ws.subprotocol != SUBPROTOCOL:
                        self._note(f"OCPP central system {self.url} did not agree to the ocpp1.6 subprotocol; "
                                   "disconnecting", logging.ERROR)
                    else:
                        await self._connection(ws)
            except BootRejected as exc:
                delay = exc.retry_s
                self._note(f"OCPP central system rejected our BootNotification; retrying in {delay:g} s")
            except ResetRequested:
                delay = 0.0
                attempt = 0
            except InvalidStatus as exc:
                self._note(f"OCPP central system {self.url} refused the connection: HTTP "
                           f"{exc.response.status_code}")
            except ssl.SSLCertVerificationError as exc:
                self._note(f"OCPP security event InvalidCentralSystemCertificate: {exc.verify_message}",
                           logging.ERROR)
            except (OSError, InvalidHandshake, ConnectionClosed, ConnectionLost, TimeoutError) as exc:
                self._note(f"OCPP central system {self.url} unreachable: {exc or type(exc).__name__}")
            finally:
                self._rpc = None
                self._booted.clear()
            if self._link_note is not None and delay is None:
                self.errors["connection"] += 1
            if self._link_note is None:
                attempt = 0
            if delay is None:
                delay = backoff_s(attempt, self.options.reconnect_min_s, self.options.reconnect_max_s)
                attempt += 1
            await asyncio.sleep(delay)

    def _ping_s(self) -> float | None:
        """WebSocketPingInterval (0: no pings); also how long a pong may take."""
        return float(self.station.config.integer("WebSocketPingInterval")) or None

    async def _connection(self, ws: ClientConnection) -> None:
        rpc = RpcEndpoint(ws, self.station.handlers(), self_checked=SELF_CHECKED,
                          response_timeout_s=self.options.response_timeout_s, log=self._log)
        while not self.station.followups.empty():
            self.station.followups.get_nowait()  # triggers meant for an earlier connection
        await _first_done(rpc.serve(), self._converse(rpc), self._followups(rpc))

    async def _converse(self, rpc: RpcEndpoint) -> None:
        await self._boot(rpc)
        self._rpc = rpc
        self._booted.set()
        self._note(f"OCPP connected to {self.url}, BootNotification accepted", logging.INFO)
        self._link_note = None
        await _first_done(self._heartbeats(rpc), self._statuses(rpc), self._deliver(rpc))

    def _boot_payload(self) -> dict[str, Any]:
        payload = {"chargePointVendor": self.options.vendor, "chargePointModel": self.options.model,
                   "firmwareVersion": __version__}
        if self.options.serial_number is not None:
            payload["chargePointSerialNumber"] = self.options.serial_number
        return payload

    async def _boot(self, rpc: RpcEndpoint) -> None:
        """BootNotification until Accepted (spec §4.2): nothing else is sent before, except what a TriggerMessage
        asks for while Pending."""
        while True:
            try:
                answer = await rpc.call("BootNotification", self._boot_payload())
            except CallErrorReceived as exc:
                self._note(f"OCPP BootNotification failed ({exc}); retrying in {DEFAULT_RETRY_S:g} s")
                await self._wait_for_boot_retry(DEFAULT_RETRY_S)
                continue
            interval = float(answer["interval"])
            if answer["status"] == "Accepted":
                if interval > 0:
                    self.station.heartbeat_s = interval
                return
            retry = interval if interval > 0 else DEFAULT_RETRY_S
            if answer["status"] == "Rejected":
                raise BootRejected(retry)
            self._note(f"OCPP registration pending; BootNotification again in {retry:g} s", logging.INFO)
            await self._wait_for_boot_retry(retry)

    async def _wait_for_boot_retry(self, seconds: float) -> None:
        self._boot_now.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._boot_now.wait()

    async def _heartbeats(self, rpc: RpcEndpoint) -> None:
        """Heartbeat when no call went out for the interval (0: none; a ChangeConfiguration applies at once)."""
        while True:
            interval = self.station.heartbeat_s
            if interval <= 0:
                await asyncio.sleep(1.0)
                continue
            wait = rpc.last_sent + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, interval))
                continue
            await rpc.call("Heartbeat", {})

    async def _statuses(self, rpc: RpcEndpoint) -> None:
        """StatusNotification for connector 0 and every connector after boot, then on every change, once the
        status has lasted MinimumStatusDuration (a fault is reported at once)."""
        sent: dict[int, Any] = {}
        changed = self.station.status_changed
        while True:
            changed.clear()
            hold = float(self.station.config.integer("MinimumStatusDuration"))
            wake: float | None = None
            for n, (report, since) in sorted(self.station.reports.items()):
                if sent.get(n) == report:
                    continue
                ready_at = since + hold
                if report.status is not ChargePointStatus.FAULTED and self._wall() < ready_at:
                    wake = ready_at if wake is None else min(wake, ready_at)
                    continue
                try:
                    await rpc.call("StatusNotification", report.payload(n, format_time(since)))
                except CallErrorReceived as exc:
                    self._log.warning("StatusNotification for connector %d refused: %s", n, exc)
                sent[n] = report
            if any(sent.get(n) != entry[0] for n, entry in self.station.reports.items()) and wake is None:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wake is None else max(0.0, wake - self._wall())):
                    await changed.wait()

    async def _deliver(self, rpc: RpcEndpoint) -> None:
        """The outbox, in order (spec §3.7): a CALLERROR is a failure to process, retried after
        TransactionMessageRetryInterval x attempt and given up after TransactionMessageAttempts; a lost connection
        or a timeout is not, the message stays for the next connection."""
        outbox = self.station.outbox
        changed = self.station.outbox_changed
        while True:
            message = outbox.peek()
            if message is None:
                self._drained.set()
                changed.clear()
                await changed.wait()
                continue
            self._drained.clear()
            try:
                answer = await rpc.call(message.action, message.payload)
            except CallErrorReceived as exc:
                self.errors["callerror"] += 1
                attempts = self._attempts.get(message.seq, 0) + 1
                if attempts >= max(1, self.station.config.integer("TransactionMessageAttempts")):
                    self._attempts.pop(message.seq, None)
                    self.station.given_up(message, str(exc))
                else:
                    self._attempts[message.seq] = attempts
                    self._log.warning("%s refused (%s); attempt %d", message.action, exc, attempts)
                    await asyncio.sleep(self.station.config.integer("TransactionMessageRetryInterval") * attempts)
                continue
            self._attempts.pop(message.seq, None)
            self.station.delivered(message, answer)

    async def _followups(self, rpc: RpcEndpoint) -> None:
        """What the central system's calls asked for, after their answer went out."""
        while True:
            item = await self.station.followups.get()
            if isinstance(item, Reconnect):
                if self.station.outbox.peek() is not None:
                    self._drained.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAIN_S if self.booted else 0):
                        await self._drained.wait()
                raise ResetRequested()
            await self._send_triggered(rpc, item)

    async def _send_triggered(self, rpc: RpcEndpoint, trigger: Trigger) -> None:
        try:
            if trigger.message == "BootNotification":
                if not self.booted:
                    self._boot_now.set()
                    return
                answer = await rpc.call("BootNotification", self._boot_payload())
                if answer["status"] == "Accepted" and answer["interval"] > 0:
                    self.station.heartbeat_s = float(answer["interval"])
            elif trigger.message == "Heartbeat":
                await rpc.call("Heartbeat", {})
            elif trigger.message == "StatusNotification":
                connectors = [0, *self.station.connectors] if trigger.connector is None else [trigger.connector]
                for n in connectors:
                    payload = self.station.status_payload(n)
                    if payload is not None:
                        await rpc.call("StatusNotification", payload)
            elif trigger.message == "MeterValues":
                for payload in self.station.triggered_meter_values(trigger.connector, self._wall()):
                    await rpc.call("MeterValues", payload)
        except CallErrorReceived as exc:
            self._log.warning("triggered %s refused: %s", trigger.message, exc)

    # --- authorisation -------------------------------------------------------------------------------------------

    async def _authorize_loop(self) -> None:
        while True:
            request = await self.station.auth_requests.get()
            accepted = await self._authorize(request)
            self.station.sessions.authorized(request.connector, request.id_tag, accepted)
            self.station.save()
            self.station.step(self._wall())

    async def _authorize(self, request: AuthorizeTag) -> bool:
        config = self.station.config
        local = self.station.auth.lookup(request.id_tag, self._wall())
        pre_authorize = config.boolean("LocalPreAuthorize")
        central: str | None = None
        rpc = self._rpc
        if rpc is not None and not (pre_authorize and local == "Accepted"):
            try:
                answer = await rpc.call("Authorize", {"idTag": request.id_tag})
            except (CallErrorReceived, TimeoutError, ConnectionLost, ConnectionClosed) as exc:
                self._log.warning("Authorize %s not answered (%s); deciding locally", request.id_tag,
                                  exc or type(exc).__name__)
            else:
                info = answer["idTagInfo"]
                self.station.auth.remember(request.id_tag, info)
                central = str(info["status"])
        accepted = decide(local, central, pre_authorize=pre_authorize,
                          offline_authorize=config.boolean("LocalAuthorizeOffline"),
                          allow_unknown_offline=config.boolean("AllowOfflineTxForUnknownId"))
        self._log.info("idTag %s %s on connector %d (%s)", request.id_tag, "accepted" if accepted else "refused",
                       request.connector, "central system" if central is not None else "local decision")
        return accepted
