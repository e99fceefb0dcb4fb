"""A small OCPP 1.6J central system (CSMS): for tests, demos and docker-compose, not for production.

It accepts charge points at ``ws://HOST:PORT/<chargePointId>`` (any path prefix; the identity is the last path
segment, OCPP-J §3.1), negotiates the ``ocpp1.6`` subprotocol (a client that offers none is refused with HTTP
400), optionally checks HTTP Basic credentials (security profile 1: the user is the charge point id) and refuses
unknown identities with HTTP 404 (errata §3.68). It answers every charge-point-initiated message correctly,
prints one line per message, and can send calls to a charge point: right after its BootNotification (a site cap,
a timed script) or whenever a test asks.

The ``ocpp`` library pitfalls are handled here: handlers never await a call (the receive loop would deadlock;
scripted calls run in their own task, owned by the connection), and every call is made with ``suppress=False``
so a CALLERROR is seen rather than turned into None.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hmac
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from ocpp.charge_point import camel_to_snake_case, remove_nones
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call
from ocpp.v16 import call_result as result
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from drivers.aio import cancel_and_wait
from gateway.errors import PeerError
from gateway.faces.ocpp.payload import camel_key, format_time
from gateway.site.config import ConfigError, ConfigIssue, read_yaml

LOG = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("ocpp1.6")
CENTRAL_SYSTEM_ACTIONS = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
    "DataTransfer", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion",
    "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile",
    "TriggerMessage", "UnlockConnector", "UpdateFirmware"})
"""Calls a central system may send (spec §5)."""

F = TypeVar("F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[F], F]:
    """The library's ``@on``, typed."""
    return cast(Callable[[F], F], on(action))


def camel(data: Any) -> Any:
    """snake_case keys (as the library hands them over) back to the wire's camelCase; the ``Decimal`` numbers
    the library puts into GetCompositeSchedule answers become floats, so the result is plain JSON."""
    if isinstance(data, Mapping):
        return {camel_key(str(k)): camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [camel(v) for v in data]
    if isinstance(data, Decimal):
        return float(data)
    return data


@dataclass(frozen=True, slots=True)
class Received:
    """A call a charge point sent us."""

    charge_point: str
    action: str
    payload: dict[str, Any]
    """camelCase, as on the wire."""
    time: float


@dataclass(frozen=True, slots=True)
class Exchange:
    """A call we sent a charge point, and how it answered."""

    charge_point: str
    action: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str | None
    """The CALLERROR code and description, or "timeout"; None when it answered."""


class CallFailed(PeerError, RuntimeError):
    """The charge point answered with a CALLERROR, or not in time."""


class ScriptStep(BaseModel):
    """One timed action: ``at`` seconds after the charge point's BootNotification, send ``action``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: float = Field(ge=0, le=7 * 86_400)
    action: str
    payload: dict[str, Any] = Field(default_factory=dict)


def build_request(action: str, payload: Mapping[str, Any]) -> Any:
    """The library's request object for ``action`` from a camelCase payload; ``ValueError`` if it does not fit."""
    if action not in CENTRAL_SYSTEM_ACTIONS:
        known = ", ".join(sorted(CENTRAL_SYSTEM_ACTIONS))
        raise ValueError(f"{action!r} is not a call a central system sends ({known})")
    try:
        return getattr(call, action)(**camel_to_snake_case(dict(payload)))
    except TypeError as exc:
        raise ValueError(f"{action}: payload does not fit ({exc})") from None


def parse_script(data: Any, source: str) -> tuple[ScriptStep, ...]:
    """A list of ``{at, action, payload}``; every problem is reported at once, naming the step."""
    if not isinstance(data, list):
        raise ConfigError(source, [ConfigIssue("", "a script is a list of steps: "
                                               "- {at: 5, action: ..., payload: ...}")])
    steps: list[ScriptStep] = []
    issues: list[ConfigIssue] = []
    for i, raw in enumerate(data):
        try:
            step = ScriptStep.model_validate(raw)
            build_request(step.action, step.payload)
            steps.append(step)
        except ValidationError as exc:
            issues += [ConfigIssue(f"[{i}]." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        except ValueError as exc:
            issues.append(ConfigIssue(f"[{i}]", str(exc)))
    if issues:
        raise ConfigError(source, issues)
    return tuple(sorted(steps, key=lambda s: s.at))


def load_script(path: Path) -> tuple[ScriptStep, ...]:
    return parse_script(read_yaml(path), str(path))


def site_cap_step(limit_a: float, start: float) -> ScriptStep:
    """A ChargePointMaxProfile at connector 0 capping the site at ``limit_a`` per phase from ``start`` on."""
    if round(limit_a, 1) != limit_a or limit_a < 0:
        raise ValueError(f"a site cap must be a non-negative multiple of 0.1 A, not {limit_a}")
    return ScriptStep(at=0, action="SetChargingProfile", payload={
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": format_time(start),
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}]}}})


def summary(action: str, p: Mapping[str, Any]) -> str:
    """One readable line for a payload (camelCase)."""
    if action == "BootNotification":
        parts = [f"{p.get('chargePointVendor')} {p.get('chargePointModel')}"]
        parts += [f"{k}={p[k]}" for k in ("chargePointSerialNumber", "firmwareVersion") if k in p]
        return " ".join(parts)
    if action == "StatusNotification":
        error = "" if p.get("errorCode") == "NoError" else f" error={p.get('errorCode')}"
        info = f" info={p['info']!r}" if "info" in p else ""
        return f"connector {p.get('connectorId')} {p.get('status')}{error}{info}"
    if action == "StartTransaction":
        return f"connector {p.get('connectorId')} idTag={p.get('idTag')} meterStart={p.get('meterStart')} Wh " \
               f"at {p.get('timestamp')}"
    if action == "StopTransaction":
        reason = f" reason={p['reason']}" if "reason" in p else ""
        return f"transaction {p.get('transactionId')} meterStop={p.get('meterStop')} Wh{reason}"
    if action == "MeterValues":
        values = []
        for mv in p.get("meterValue", []):
            for sv in mv.get("sampledValue", []):
                name = sv.get("measurand", "Energy.Active.Import.Register")
                phase = f".{sv['phase']}" if "phase" in sv else ""
                values.append(f"{name}{phase}={sv.get('value')}{sv.get('unit', '')}")
        tx = f" transaction {p['transactionId']}" if "transactionId" in p else ""
        return f"connector {p.get('connectorId')}{tx}: {', '.join(values)}"
    if action == "Heartbeat":
        return ""
    text = json.dumps(p, separators=(",", ":"))
    return text if len(text) <= 300 else text[:297] + "..."


class _Session(ChargePoint):  # type: ignore[misc]  # the library has no type information
    """One connected charge point, as the central system sees it."""

    def __init__(self, charge_point_id: str, connection: ServerConnection, csms: CentralSystem) -> None:
        super().__init__(charge_point_id, connection, response_timeout=csms.response_timeout,
                         logger=logging.getLogger("ocpp"))
        self.csms = csms
        self.connection = connection
        self.booted = asyncio.Event()

    def _note(self, action: str, fields: Mapping[str, Any], answer: str = "") -> None:
        payload = camel(fields)
        self.csms._record(Received(self.id, action, payload, time.time()))
        self.csms._print(f"{self.id} <- {action} {summary(action, payload)}".rstrip() + (f" -> {answer}"
                                                                                          if answer else ""))

    def _now(self) -> str:
        return format_time(round(time.time(), 3))

    @_on("BootNotification")
    def _boot(self, **fields: Any) -> Any:
        status = self.csms.boot_status
        self._note("BootNotification", fields, status)
        if status == "Accepted":
            self.booted.set()
        return result.BootNotification(current_time=self._now(), interval=self.csms.heartbeat_interval,
                                       status=status)

    @_on("Heartbeat")
    def _heartbeat(self, **fields: Any) -> Any:
        self._note("Heartbeat", fields)
        return result.Heartbeat(current_time=self._now())

    @_on("StatusNotification")
    def _status(self, **fields: Any) -> Any:
        self._note("StatusNotification", fields)
        return result.StatusNotification()

    @_on("Authorize")
    def _authorize(self, **fields: Any) -> Any:
        self._note("Authorize", fields, "Accepted")
        return result.Authorize(id_tag_info={"status": "Accepted"})

    @_on("StartTransaction")
    def _start(self, **fields: Any) -> Any:
        tx = self.csms._next_transaction_id()
        self._note("StartTransaction", fields, f"transactionId {tx}")
        return result.StartTransaction(transaction_id=tx, id_tag_info={"status": "Accepted"})

    @_on("StopTransaction")
    def _stop(self, **fields: Any) -> Any:
        self._note("StopTransaction", fields)
        return result.StopTransaction(id_tag_info={"status": "Accepted"} if "id_tag" in fields else None)

    @_on("MeterValues")
    def _meter_values(self, **fields: Any) -> Any:
        self._note("MeterValues", fields)
        return result.MeterValues()

    @_on("DataTransfer")
    def _data_transfer(self, **fields: Any) -> Any:
        self._note("DataTransfer", fields, "UnknownVendorId")
        return result.DataTransfer(status="UnknownVendorId")

    @_on("DiagnosticsStatusNotification")
    def _diagnostics(self, **fields: Any) -> Any:
        self._note("DiagnosticsStatusNotification", fields)
        return result.DiagnosticsStatusNotification()

    @_on("FirmwareStatusNotification")
    def _firmware(self, **fields: Any) -> Any:
        self._note("FirmwareStatusNotification", fields)
        return result.FirmwareStatusNotification()

    async def send(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send one call and wait for the answer (camelCase); raises ``CallFailed``."""
        request = build_request(action, payload)
        line = f"{self.id} -> {action} {summary(action, payload)}"
        try:
            answer = await self.call(request, suppress=False)
        except OCPPError as exc:
            error = f"{type(exc).__name__}: {exc.description}"
        except TimeoutError:
            error = "timeout"
        else:
            response = camel(remove_nones(dataclasses.asdict(answer)))
            self.csms._record_exchange(Exchange(self.id, action, dict(payload), response, None))
            self.csms._print(f"{line} <- {summary(action + 'Response', response)}")
            return cast(dict[str, Any], response)
        self.csms._record_exchange(Exchange(self.id, action, dict(payload), None, error))
        self.csms._print(f"{line} <- FAILED {error}")
        raise CallFailed(f"{action} to {self.id}: {error}")

    async def follow_script(self, steps: Sequence[ScriptStep]) -> None:
        """Run the timed steps, counted from this connection's first BootNotification. A failed step is
        reported and the script goes on."""
        if not steps:
            return
        await self.booted.wait()
        loop = asyncio.get_running_loop()
        booted_at = loop.time()
        for step in steps:
            await asyncio.sleep(max(0.0, booted_at + step.at - loop.time()))
            with contextlib.suppress(CallFailed):  # already printed and recorded; the script goes on
                await self.send(step.action, step.payload)


class CentralSystem:
    """The server. Start it with ``async with CentralSystem(port=0) as csms:``; ``csms.port`` is the real port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, password: str | None = None,
                 allowed: Iterable[str] | None = None, heartbeat_interval: int = 300, cap_site_a: float | None = None,
                 script: Sequence[ScriptStep] = (), first_transaction_id: int = 1, response_timeout: float = 30.0,
                 printer: Callable[[str], None] | None = None, boot_status: str = "Accepted",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """``password``: require HTTP Basic with user = charge point id and this password. ``allowed``: the
        only identities accepted (others get 404). ``cap_site_a``: send a ChargePointMaxProfile with this limit
        right after each BootNotification, before ``script``. ``printer`` gets one line per message.
        ``boot_status``: the answer to BootNotification (Accepted, Pending, Rejected; tests may change it while
        running). ``ssl_context``: serve ``wss://`` (a client certificate is required if the context says so)."""
        if cap_site_a is not None:
            site_cap_step(cap_site_a, 0)  # validate now, not after the first boot
        self.host = host
        self.requested_port = port
        self.password = password
        self.allowed = None if allowed is None else frozenset(allowed)
        self.heartbeat_interval = heartbeat_interval
        self.cap_site_a = cap_site_a
        self.script = tuple(script)
        self.boot_status = boot_status
        self.ssl_context = ssl_context
        self.response_timeout = response_timeout
        self.received: list[Received] = []
        self.exchanges: list[Exchange] = []
        self._printer = printer
        self._next_tx = first_transaction_id
        self._sessions: dict[str, _Session] = {}
        self._changed = asyncio.Event()
        self._server: Server | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(self._serve_connection, self.host, self.requested_port,
                                   subprotocols=[SUBPROTOCOL], process_request=self._check_request,
                                   ssl=self.ssl_context)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the central system is not running")
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, charge_point_id: str = "") -> str:
        scheme = "ws" if self.ssl_context is None else "wss"
        return f"{scheme}://{self.host}:{self.port}/{charge_point_id}"

    @property
    def connected(self) -> frozenset[str]:
        return frozenset(self._sessions)

    # --- the connection ----------------------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the upgrade: identity known, credentials right."""
        cp_id = _identity(request.path)
        if not cp_id or (self.allowed is not None and cp_id not in self.allowed):
            self._print(f"refused {request.path!r}: unknown charge point")
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point\n")
        if self.password is not None and not self._credentials_ok(cp_id, request.headers):
            self._print(f"refused {cp_id}: wrong or missing credentials")
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "Wrong or missing credentials\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="powershare csms", charset="UTF-8"'
            return response
        return None

    def _credentials_ok(self, cp_id: str, headers: Headers) -> bool:
        assert self.password is not None
        scheme, _, encoded = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        # The user is the identity from the URL, which may itself contain a colon: split after it, not at the first.
        if not decoded.startswith(cp_id + ":"):
            return False
        return hmac.compare_digest(decoded[len(cp_id) + 1:].encode(), self.password.encode())

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        cp_id = _identity(connection.request.path)
        session = _Session(cp_id, connection, self)
        previous = self._sessions.get(cp_id)
        if previous is not None:
            await previous.connection.close(1000, "replaced by a new connection")
        self._sessions[cp_id] = session
        self._print(f"{cp_id} connected from {connection.remote_address[0]}")
        steps = (site_cap_step(self.cap_site_a, float(int(time.time()))),) if self.cap_site_a is not None else ()
        script = asyncio.create_task(session.follow_script((*steps, *self.script)))
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            await cancel_and_wait(script)
            if self._sessions.get(cp_id) is session:
                del self._sessions[cp_id]
            self._print(f"{cp_id} disconnected")
            self._notify()

    # --- what tests and scripts use ----------------------------------------------------------------------------

    async def call(self, charge_point_id: str, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``action`` to a connected charge point; returns its answer (camelCase) or raises ``CallFailed``
        (CALLERROR or timeout), ``KeyError`` (not connected) or ``ValueError`` (payload does not fit)."""
        session = self._sessions.get(charge_point_id)
        if session is None:
            raise KeyError(f"{charge_point_id} is not connected")
        return await session.send(action, payload)

    async def wait_for(self, action: str, *, charge_point: str | None = None,
                       where: Callable[[dict[str, Any]], bool] | None = None) -> Received:
        """The first received ``action`` (from ``charge_point``, matching ``where``), waiting for it if need be.
        Bound the wait with ``asyncio.timeout``."""
        while True:
            for item in self.received:
                if item.action == action and charge_point in (None, item.charge_point) and (
                        where is None or where(item.payload)):
                    return item
            await self._changed.wait()

    async def wait_for_exchange(self, action: str) -> Exchange:
        """The first completed call of ``action`` we sent (a scripted one, say)."""
        while True:
            for item in self.exchanges:
                if item.action == action:
                    return item
            await self._changed.wait()

    async def disconnect(self, charge_point_id: str) -> None:
        """Close a charge point's connection (it will reconnect)."""
        session = self._sessions.get(charge_point_id)
        if session is not None:
            await session.connection.close(1001, "going away")

    async def wait_connected(self, charge_point_id: str) -> None:
        while charge_point_id not in self._sessions:
            await self._changed.wait()

    # --- internals -----------------------------------------------------------------------------------------------

    def _next_transaction_id(self) -> int:
        tx = self._next_tx
        self._next_tx += 1
        return tx

    def _record(self, item: Received) -> None:
        self.received.append(item)
        self._notify()

    def _record_exchange(self, item: Exchange) -> None:
        self.exchanges.append(item)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _print(self, line: str) -> None:
        LOG.debug("%s", line)
        if self._printer is not None:
            stamp = time.strftime("%H:%M:%S", time.gmtime())
            self._printer(f"{stamp} {line}")


def _identity(path: str) -> str:
    """The charge point identity: the last segment of the URL path, percent-decoded (OCPP-J §3.1)."""
    return unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
