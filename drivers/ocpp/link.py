"""One websocket connection of a follower, as the ``ocpp`` library's central-system side, answering locally.

Every charge-point-initiated message is answered here, so the site works with no central system: BootNotification
is accepted, idTags are checked against the local list, transaction ids are issued locally. Handlers hand what they
learn to the ``Station`` and return at once; they never await a call to the charger (the library handles inbound
messages one at a time, so a handler awaiting an answer would wait for a message it can never read).

The library is made robust against a misbehaving charger at the frame level: a frame that is not an OCPP message
gets a CALLERROR when it carries a message id (otherwise it is counted and dropped; there is nobody to answer), an
unexpected exception becomes an ``InternalError`` CALLERROR instead of ending the receive loop, and error codes
go out in their OCPP 1.6 spelling (the library uses 2.0.1's ``FormatViolation``).

What one connection may cost is bounded:

* messages are read at most ``rate_per_s`` a second after a burst of ``burst`` (a token bucket): beyond that the
  receive loop waits, the websocket stops reading, and TCP pushes back on the charger. A flood costs the gateway
  the same as a busy charger, and the control loop keeps its time;
* a frame nested deeper than ``MAX_DEPTH`` is refused before the library sees it (deep nesting made the JSON
  parser raise ``RecursionError``, which closed the connection);
* an action the gateway has no handler for (unknown, or one only a central system sends) gets a CALLERROR here,
  without the library's traceback: ``NotImplemented`` if OCPP 1.6 does not know it, ``NotSupported`` if it does
  (§4.2.3).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v16 import ChargePoint
from ocpp.v16 import call_result as result
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from drivers.ocpp.meter_values import MeterValuesError, format_time, parse_time
from drivers.ocpp.station import Station
from drivers.ocpp.throttle import TokenBucket
from drivers.ocpp.wire_log import wire_log

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_MESSAGE_ID = 36
MAX_DEPTH = 16
"""Deepest nesting of arrays and objects in a frame; OCPP 1.6 messages need 6."""
_SPELLING_1_6 = {"FormatViolation": "FormationViolation", "OccurrenceConstraintViolation":
                 "OccurenceConstraintViolation"}


def _on(action: str) -> Callable[[F], F]:
    """The library's ``@on``, typed."""
    return cast(Callable[[F], F], on(action))


def depth_of(value: object) -> int:
    """How deeply arrays and objects nest in a parsed frame (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _known_action(action: str) -> bool:
    try:
        Action(action)
    except ValueError:
        return False
    return True


def _timestamp(value: object) -> None:
    try:
        parse_time(value)
    except ValueError as exc:
        raise PropertyConstraintViolationError(description=f"timestamp: {exc}") from None


class ChargePointLink(ChargePoint):  # type: ignore[misc]  # the library has no type information
    """The gateway's side of one follower connection."""

    def __init__(self, station: Station, connection: ServerConnection, *, heartbeat_interval_s: int,
                 wall: Callable[[], float], rate_per_s: float = 20.0, burst: int = 60) -> None:
        super().__init__(station.settings.charge_point_id, connection, response_timeout=station.settings.timeout_s,
                         logger=wire_log("endpoint"))
        self.station = station
        self.connection = connection
        self.closed = asyncio.Event()
        self._heartbeat_interval_s = heartbeat_interval_s
        self._wall = wall
        self._bucket = TokenBucket(rate_per_s, burst)
        self._log_gate = TokenBucket(0.1, 5)
        """Warnings about this connection's bad frames: a few, then one every 10 s (the counts go on)."""

    # -- frames ------------------------------------------------------------------------------------------------------
    async def _throttle(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._bucket.wait_s(loop.time())
        if wait > 0:
            self.station.throttled += 1
            await asyncio.sleep(wait)
        self._bucket.take(loop.time())

    async def route_message(self, raw_msg: str | bytes) -> None:
        await self._throttle()
        self.station.heard_from()
        try:
            frame = json.loads(raw_msg)
        except (ValueError, RecursionError):
            self._malformed("not JSON, or nested too deeply to read")
            return
        message_id = frame[1] if isinstance(frame, list) and len(frame) > 1 else None
        answerable = isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID
        if depth_of(frame) > MAX_DEPTH:
            if answerable:
                await self._send_error(str(message_id), "FormationViolation",
                                       f"nested deeper than {MAX_DEPTH} levels")
            else:
                self._malformed(f"nested deeper than {MAX_DEPTH} levels")
            return
        if not isinstance(frame, list) or not frame or frame[0] not in (2, 3, 4) or isinstance(frame[0], bool):
            if answerable:
                await self._send_error(str(message_id), "ProtocolError", "unknown message type")
            else:
                self._malformed("not an OCPP-J frame")
            return
        if frame[0] == 2 and not (len(frame) == 4 and answerable and isinstance(frame[2], str)
                                  and isinstance(frame[3], dict)):
            if answerable:
                await self._send_error(str(message_id), "FormationViolation",
                                       "a CALL is [2, messageId, action, {payload}]")
            else:
                self._malformed("CALL without a usable message id")
            return
        if frame[0] == 2 and frame[2] not in self.route_map:
            if _known_action(frame[2]):
                await self._send_error(str(message_id), "NotSupported", f"{frame[2]} is not handled here")
            else:
                await self._send_error(str(message_id), "NotImplemented", "unknown action")
            return
        try:
            await super().route_message(raw_msg)
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("%s: error handling %s", self.id, str(raw_msg)[:200])
            if frame[0] == 2:
                await self._send_error(str(message_id), "InternalError", "the gateway could not handle this")

    async def _send(self, message: str) -> None:
        if message.startswith("[4,"):
            frame = json.loads(message)
            if frame[2] in _SPELLING_1_6:
                frame[2] = _SPELLING_1_6[frame[2]]
                message = json.dumps(frame, separators=(",", ":"))
        await super()._send(message)

    def _warn(self, text: str, *args: object) -> None:
        if self._log_gate.take(asyncio.get_running_loop().time()):
            log.warning(text, *args)

    async def _send_error(self, message_id: str, code: str, description: str) -> None:
        self.station.refused += 1
        self._warn("%s: answered message %r with %s: %s (%d refused so far)", self.id, message_id[:MAX_MESSAGE_ID],
                   code, description, self.station.refused)
        await self._send(json.dumps([4, message_id, code, description, {}], separators=(",", ":")))

    def _malformed(self, what: str) -> None:
        self.station.malformed += 1
        self._warn("%s: dropped a frame (%s); %d so far", self.id, what, self.station.malformed)

    def _now(self) -> str:
        return format_time(self._wall())

    # -- charge-point-initiated messages --------------------------------------------------------------------------
    @_on("BootNotification")
    def _boot(self, **fields: Any) -> Any:
        self.station.boot(fields)
        log.info("%s booted: %s", self.id, self.station.identity)
        return result.BootNotification(current_time=self._now(), interval=self._heartbeat_interval_s,
                                       status="Accepted")

    @_on("Heartbeat")
    def _heartbeat(self) -> Any:
        return result.Heartbeat(current_time=self._now())

    @_on("Authorize")
    def _authorize(self, id_tag: str) -> Any:
        return result.Authorize(id_tag_info={"status": self.station.authorize(id_tag)})

    @_on("StartTransaction")
    def _start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any) -> Any:
        _timestamp(timestamp)
        transaction_id, status = self.station.start_transaction(connector_id, id_tag, float(meter_start))
        log.info("%s connector %d: transaction %d started (%s)", self.id, connector_id, transaction_id, status)
        return result.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": status})

    @_on("StopTransaction")
    def _stop(self, meter_stop: int, timestamp: str, transaction_id: int, id_tag: str | None = None,
              **_: Any) -> Any:
        _timestamp(timestamp)
        self.station.stop_transaction(transaction_id, float(meter_stop))
        log.info("%s: transaction %d stopped", self.id, transaction_id)
        info = {"status": self.station.authorize(id_tag)} if id_tag is not None else None
        return result.StopTransaction(id_tag_info=info)

    @_on("StatusNotification")
    def _status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        self.station.status(connector_id, status, error_code)
        return result.StatusNotification()

    @_on("MeterValues")
    def _meter_values(self, connector_id: int, meter_value: list[Any], **_: Any) -> Any:
        try:
            self.station.meter_values(connector_id, meter_value)
        except MeterValuesError as exc:
            raise PropertyConstraintViolationError(description=str(exc)) from None
        return result.MeterValues()

    @_on("DataTransfer")
    def _data_transfer(self, **_: Any) -> Any:
        return result.DataTransfer(status="UnknownVendorId")

    @_on("DiagnosticsStatusNotification")
    def _diagnostics(self, **_: Any) -> Any:
        return result.DiagnosticsStatusNotification()

    @_on("FirmwareStatusNotification")
    def _firmware(self, **_: Any) -> Any:
        return result.FirmwareStatusNotification()

    @_on("SecurityEventNotification")
    def _security_event(self, type: str, **_: Any) -> Any:  # the OCPP field name
        log.info("%s: security event %s", self.id, type)
        return result.SecurityEventNotification()

