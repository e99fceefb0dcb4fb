"""OCPP-J 1.6 over one WebSocket: CALL, CALLRESULT and CALLERROR frames, schema checks, 1.6 error codes.

Built on the ``ocpp`` library's message schemas (``ocpp.messages.get_validator``) but not on its ``ChargePoint``
class, whose pitfalls a gateway cannot live with (docs/ocpp.md, research notes §5.3): an exception that is not an
``OCPPError`` kills its receive loop, unparsable frames get no answer, it answers with 2.0.1 error codes
(``FormatViolation``) and reads "unknown action" the other way round from most peers, and ``suppress=True``
hides CALLERRORs. Here:

* inbound calls are answered one after another by *synchronous* handlers, so a handler can never wait for a call
  of its own (the deadlock of research §5.3.4); work that needs the central system goes to a queue;
* anything a handler raises becomes a CALLERROR, never the end of the connection: ``PayloadError`` with its 1.6
  code, ``RpcError`` as given, anything else ``InternalError`` (logged with its traceback);
* an action 1.6 does not define is ``NotImplemented``, a 1.6 action without a handler ``NotSupported``
  (OCPP-J §4.2.3 as ocpp-go, Java-OCA-OCPP and ocpp-rpc read it);
* schema failures get the 1.6 codes: wrong type ``TypeConstraintViolation``, missing field
  ``OccurenceConstraintViolation``, unknown field ``FormationViolation``, bad enum or range
  ``PropertyConstraintViolation`` (errata §3.38);
* a frame that is not JSON, or not an OCPP frame, is logged and dropped; if it carries a call's message id it is
  answered with a CALLERROR;
* one outgoing call at a time (OCPP-J §4.1.1); ``call`` raises ``CallErrorReceived`` for a CALLERROR,
  ``TimeoutError`` when no answer comes, ``ConnectionLost`` when the connection closes meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from ocpp.messages import get_validator
from ocpp.v16.enums import Action

from gateway.errors import PeerError
from gateway.faces.ocpp.payload import CallErrorCode, PayloadError

CALL, CALLRESULT, CALLERROR = 2, 3, 4
KNOWN_ACTIONS = frozenset(action.value for action in Action)
"""Every action OCPP 1.6 (with the security extension) defines."""
_DECIMAL_SCHEMAS = {(CALL, "SetChargingProfile"), (CALL, "RemoteStartTransaction"),
                    (CALLRESULT, "GetCompositeSchedule")}
"""Schemas with ``multipleOf: 0.1`` that the library reads with Decimal numbers (the same choice, since it caches
one validator per schema)."""


class Connection(Protocol):
    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""camelCase payload in, camelCase answer out; raises ``PayloadError`` or ``RpcError`` for a CALLERROR."""


class RpcError(PeerError):
    """Answer the call with this CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class CallErrorReceived(RpcError):
    """The peer answered our call with a CALLERROR (or with an answer that breaks the schema)."""


class ConnectionLost(PeerError, ConnectionError):
    """The connection closed while a call waited for its answer."""


def check(kind: int, action: str, payload: object) -> None:
    """Raise ``PayloadError`` with the 1.6 code if ``payload`` breaks the schema of ``action`` (kind: CALL for the
    request, CALLRESULT for the answer)."""
    parse_float = Decimal if (kind, action) in _DECIMAL_SCHEMAS else float
    try:
        validator = get_validator(kind, action, "1.6", parse_float=parse_float)
    except OSError:
        raise PayloadError(CallErrorCode.FORMATION_VIOLATION, f"no schema for {action}") from None
    instance = json.loads(json.dumps(payload), parse_float=Decimal) if parse_float is Decimal else payload
    error = next(iter(validator.iter_errors(instance)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise PayloadError(_code(error.validator), f"{action} {where}: {error.message}")


def _code(validator: object) -> CallErrorCode:
    if validator in ("type", "maxLength"):
        return CallErrorCode.TYPE_CONSTRAINT_VIOLATION
    if validator == "required":
        return CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION
    if validator == "additionalProperties":
        return CallErrorCode.FORMATION_VIOLATION
    return CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION


class RpcEndpoint:
    """One connection's OCPP-J traffic. ``serve`` runs the receive loop until the connection closes."""

    def __init__(self, connection: Connection, handlers: Mapping[str, Handler], *, self_checked: frozenset[str],
                 response_timeout_s: float, log: logging.Logger | logging.LoggerAdapter[logging.Logger],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``self_checked``: actions whose handlers read the payload themselves (with 1.6 codes and plain floats)
        instead of the schema check."""
        self._connection = connection
        self._handlers = handlers
        self._self_checked = self_checked
        self._timeout = response_timeout_s
        self._log = log
        self._clock = clock
        self._lock = asyncio.Lock()
        self._waiting: tuple[str, asyncio.Future[list[Any]]] | None = None
        self.last_sent = clock()
        """When our last call went out (monotonic): heartbeats are only needed when idle."""

    async def serve(self) -> None:
        """Receive and answer until the connection closes (its exception propagates)."""
        try:
            while True:
                raw = await self._connection.recv()
                await self._receive(raw)
        finally:
            if self._waiting is not None and not self._waiting[1].done():
                self._waiting[1].set_exception(ConnectionLost("the connection closed"))

    async def _receive(self, raw: str | bytes) -> None:
        self._log.debug("< %s", raw)
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._log.warning("dropped a frame that is not JSON: %.200r", raw)
            return
        if not isinstance(frame, list) or not frame or frame[0] not in (CALL, CALLRESULT, CALLERROR):
            self._log.warning("dropped a frame that is not an OCPP-J message: %.200s", raw)
            return
        if frame[0] == CALL:
            await self._answer(frame)
        else:
            self._resolve(frame)

    async def _answer(self, frame: list[Any]) -> None:
        unique_id = frame[1] if len(frame) > 1 else None
        if not isinstance(unique_id, str):
            self._log.warning("dropped a CALL without a message id: %.200s", frame)
            return
        try:
            reply = [CALLRESULT, unique_id, self._dispatch(frame)]
        except RpcError as exc:
            self._log.warning("answered %s with %s: %s", frame[2] if len(frame) > 2 else "a call", exc.code,
                              exc.description)
            reply = [CALLERROR, unique_id, exc.code, exc.description[:255], {}]
        await self._send(reply)

    def _dispatch(self, frame: list[Any]) -> dict[str, Any]:
        if len(frame) != 4:
            raise RpcError("ProtocolError", "a CALL has 4 elements: [2, id, action, payload]")
        _, _, action, payload = frame
        if not isinstance(action, str) or not isinstance(payload, dict):
            raise RpcError(CallErrorCode.FORMATION_VIOLATION, "the action must be a string and the payload an object")
        handler = self._handlers.get(action)
        if handler is None:
            if action in KNOWN_ACTIONS:
                raise RpcError("NotSupported", f"{action} is not supported by this charge point")
            raise RpcError("NotImplemented", f"{action!r} is not an OCPP 1.6 action")
        try:
            if action not in self._self_checked:
                check(CALL, action, payload)
            answer = handler(payload)
        except PayloadError as exc:
            raise RpcError(exc.code, str(exc)) from None
        except RpcError:
            raise
        except Exception:
            self._log.exception("handling %s failed", action)
            raise RpcError("InternalError", f"{action} could not be handled") from None
        try:
            check(CALLRESULT, action, answer)
        except PayloadError as exc:
            self._log.error("our answer to %s breaks the schema (%s): %s", action, exc, answer)
            raise RpcError("InternalError", f"{action} could not be answered") from None
        return answer

    def _resolve(self, frame: list[Any]) -> None:
        waiting = self._waiting
        unique_id = frame[1] if len(frame) > 1 else None
        if waiting is None or waiting[0] != unique_id or waiting[1].done():
            self._log.warning("dropped an answer to no call of ours: %.200s", frame)
            return
        waiting[1].set_result(frame)

    async def _send(self, frame: list[Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        self._log.debug("> %s", text)
        await self._connection.send(text)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the answer's payload (schema-checked)."""
        check(CALL, action, payload)
        async with self._lock:
            unique_id = str(uuid.uuid4())
            future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
            self._waiting = (unique_id, future)
            try:
                await self._send([CALL, unique_id, action, payload])
                self.last_sent = self._clock()
                async with asyncio.timeout(self._timeout):
                    frame = await future
            finally:
                self._waiting = None
        if frame[0] == CALLERROR:
            code = frame[2] if len(frame) > 2 and isinstance(frame[2], str) else "GenericError"
            description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
            raise CallErrorReceived(code, description)
        answer = frame[2] if len(frame) > 2 else None
        try:
            check(CALLRESULT, action, answer)
        except PayloadError as exc:
            raise CallErrorReceived(exc.code, f"the answer breaks the schema: {exc}") from None
        assert isinstance(answer, dict)
        return answer
