"""One BMS client connection: every request answered, in order, and nothing half applied.

pymodbus's own request handler keeps one request per connection: two frames that arrive in one TCP segment are
handled one at a time (the second waits for more bytes), and sending an answer empties the receive buffer, so a
master that pipelines 2–5 requests gets only the first answer. This handler takes every complete frame out of the
buffer at once, queues them, and answers them one after another, each with its own transaction id. A master that
keeps sending without reading stops being read (``MAX_PIPELINE`` requests waiting) until its answers have gone out.

What is served. Only the register functions of the map: 3, 4, 6, 16 and 23. Everything else gets exception 1
(illegal function) before any datastore is touched: bit functions (the map has no coils), FC22 mask write (a
read-modify-write is not a limit an integrator should send), and FC17 / FC43 (server id, device identification:
they would only tell a stranger which software runs here).

FC23 (read/write multiple registers) writes first and reads second. The read part is checked before the write,
so a request whose read would be refused changes nothing; a write the face refuses is never followed by a read.

Idle connections. A connection that sends nothing for ``idle_timeout_s`` is closed; a BMS polls every few seconds
and reconnects by itself, while a connection nobody uses only holds a file handle.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import ReadWriteMultipleRegistersRequest
from pymodbus.server.requesthandler import ServerRequestHandler

from gateway.runtime.log_limit import RateLimitedLog

log = logging.getLogger("gateway.faces.bms")

SERVED_FUNCTIONS = frozenset({3, 4, 6, 16, 23})
MAX_PIPELINE = 16
"""Requests of one connection waiting for their answer; beyond this the connection is not read until they drain."""
MAX_BUFFERED = 64 * 1024
"""Bytes of one connection not yet framed; more (junk without a frame) is discarded by pymodbus."""
_FC23_MAX_READ = 125
_READ_HOLDING = 3

PEER: ContextVar[tuple[str, int] | None] = ContextVar("bms_peer", default=None)
"""The TCP client of the request being answered in this task (the action logs it as the write's origin)."""

_failures = RateLimitedLog(log, interval_s=60.0)


class BmsConnection(ServerRequestHandler):
    """The handler of one TCP connection (or of the RTU line)."""

    def __init__(self, owner: Any, *, idle_timeout_s: float | None, on_lost: Callable[[], None] | None = None) -> None:
        """``on_lost``: called when the connection goes away (for the RTU line: the serial port did)."""
        super().__init__(owner, owner.trace_packet, owner.trace_pdu, owner.trace_connect)  # type: ignore[no-untyped-call]
        self.max_buffer_size = MAX_BUFFERED
        self._idle_timeout_s = idle_timeout_s
        self._on_lost = on_lost
        self._queue: deque[tuple[ModbusPDU, tuple[Any, ...] | None]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._paused = False
        self.peer: tuple[str, int] | None = None
        self.last_active_s = 0.0
        """Event-loop time of the last bytes received (or of the connection): who is evicted first at the cap."""

    # -- connection ------------------------------------------------------------------------------------------------
    def callback_connected(self) -> None:
        super().callback_connected()
        peer = self.transport.get_extra_info("peername") if self.transport else None
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self._touch()

    def callback_disconnected(self, exc: Exception | None) -> None:
        self._stop_timers()
        super().callback_disconnected(exc)
        if self._on_lost is not None:
            self._on_lost()

    def close(self, reconnect: bool = False) -> None:
        self._stop_timers()
        super().close(reconnect)

    def _stop_timers(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._queue.clear()

    def _touch(self) -> None:
        self.last_active_s = asyncio.get_running_loop().time()
        if self._idle_timeout_s is None:
            return
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(self._idle_timeout_s, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle = None
        if self._queue:
            self._touch()
            return
        log.debug("BMS client %s idle for %g s: connection closed", self.peer, self._idle_timeout_s)
        self.close()

    # -- framing ---------------------------------------------------------------------------------------------------
    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        """Take every complete frame out of ``data``; returns how many bytes were used."""
        self._touch()
        used = 0
        while used < len(data):
            try:
                length, pdu = self.framer.handleFrame(self.trace_packet(False, data[used:]), 0, 0)
            except ModbusIOException as exc:  # a function code pymodbus cannot decode: exception 1, skip the frame
                self._send(ExceptionResponse(exc.fcode or 0, ExcCodes.ILLEGAL_FUNCTION), exc.dev_id or 0,
                           exc.transaction_id or 0, addr)
                skip = _mbap_length(data[used:]) if isinstance(self.framer, FramerSocket) else None
                if skip is None:
                    return len(data)  # RTU has no length field: the rest cannot be framed
                used += skip
                continue
            if length == 0:
                break
            used += length
            if pdu is not None and (pdu := self.trace_pdu(False, pdu)) is not None:
                self._queue.append((pdu, addr))
        if self._queue and (self._worker is None or self._worker.done()):
            self._worker = asyncio.get_running_loop().create_task(self._answer_all(), name="bms answers")
        if len(self._queue) >= MAX_PIPELINE and self.transport is not None and not self._paused:
            cast(asyncio.ReadTransport, self.transport).pause_reading()
            self._paused = True
        return used

    def send(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None:
        """Write an answer without emptying the receive buffer (pymodbus's ``send`` would drop requests that
        arrived meanwhile)."""
        if not self.transport:
            return
        if self.comm_params.handle_local_echo:
            self.sent_buffer += data
        cast(asyncio.WriteTransport, self.transport).write(data)

    # -- answering -------------------------------------------------------------------------------------------------
    async def _answer_all(self) -> None:
        PEER.set(self.peer)
        while self._queue:
            pdu, addr = self._queue.popleft()
            response = await self._answer(pdu)
            self._send(response, pdu.dev_id, pdu.transaction_id, addr)
            if self._paused and len(self._queue) < MAX_PIPELINE // 2 and self.transport is not None:
                self._paused = False
                cast(asyncio.ReadTransport, self.transport).resume_reading()

    async def _answer(self, pdu: ModbusPDU) -> ModbusPDU:
        code = pdu.function_code
        if code not in SERVED_FUNCTIONS:
            return ExceptionResponse(code, ExcCodes.ILLEGAL_FUNCTION)
        context = self.server.context
        try:
            if isinstance(pdu, ReadWriteMultipleRegistersRequest):
                refusal = await _read_refusal(context, pdu)
                if refusal is not None:
                    return ExceptionResponse(code, refusal)
            return await pdu.datastore_update(context, pdu.dev_id)
        except Exception as exc:
            _failures.exception("BMS request FC%d from %s failed: %s", code, self.peer, exc)
            return ExceptionResponse(code, ExcCodes.DEVICE_FAILURE)

    def _send(self, response: ModbusPDU, dev_id: int, transaction_id: int, addr: tuple[Any, ...] | None) -> None:
        if not self.transport:  # closed meanwhile (pymodbus sets it to None)
            return
        response.dev_id = dev_id
        response.transaction_id = transaction_id
        self.pdu_send(response, addr)


def _mbap_length(data: bytes) -> int | None:
    """The length of the Modbus TCP frame at the start of ``data`` (header included), from its MBAP header."""
    if len(data) < 7:
        return None
    return min(len(data), int.from_bytes(data[4:6], "big") + 6)


async def _read_refusal(context: Any, pdu: ReadWriteMultipleRegistersRequest) -> ExcCodes | None:
    """Why the read half of an FC23 would be refused, checked before its write half runs; None if it would not."""
    if not 1 <= pdu.read_count <= _FC23_MAX_READ:
        return ExcCodes.ILLEGAL_VALUE
    values = await context.async_getValues(pdu.dev_id, _READ_HOLDING, pdu.read_address, pdu.read_count)
    return values if isinstance(values, ExcCodes) else None

