"""The BMS face on the wire: a pymodbus 3.16 TCP server, and optionally an RTU slave, serving ``BmsFace``.

pymodbus calls one async ``action`` per request with the register block of the addressed table. The action here
never awaits: it answers reads from the latest snapshot and turns writes into commands synchronously (an action
that suspends lets pymodbus label an answer with the next request's TCP transaction id). The register blocks are
sized for the largest site; which addresses exist right now (how many chargers there are) is the face's call.

Unit ids. TCP answers the configured unit id; any other id, 0 and 255 included, gets exception 10 (gateway path
unavailable) at once, so a master set to the wrong id sees why instead of timing out. The RTU slave answers only
its unit id and stays silent for every other id, as a slave on a shared RS-485 line must; a broadcast (unit 0) is
ignored too, because a change of limit nobody confirms is not one a gateway should make.

Client address. pymodbus gives the action no connection, but each connection's handler
(``gateway.faces.bms.connection``) answers its requests, action included, in one task of its own. It records the
peer in a context variable for that task, and the action reads it: the origin logged with each write is
"bms 10.0.0.5:53122".

Connections. At most ``max_connections`` TCP clients at once (a BMS needs one or two), so a flood of idle
connections cannot take the file handles the chargers, the web page and the state files need. At the cap, a new
client is let in and the client that has been silent the longest is disconnected (a warning logged at most once a
minute): a BMS that polls every few seconds is never the one, so a flood only evicts itself. A connection idle for
``idle_timeout_s`` is closed too.

The RTU line. A USB RS-485 adapter can vanish for a moment (unplugged, or reset by its driver after a surge) and
come back under the same name; pymodbus then never reads the port again. The task ``bms rtu`` (owned by the
gateway's task supervisor) waits for the line to go, and then counts as crashed: the gateway shows FAULT, and the
task opens the port again after the backoff, and again until the port is back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, cast

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from gateway.errors import StartError, StoppedError
from gateway.faces.bms.access import WriteAccess
from gateway.faces.bms.connection import PEER, BmsConnection
from gateway.faces.bms.face import BmsFace
from gateway.faces.bms.refusal import ExceptionCode, Refusal
from gateway.faces.bms.register_map import HOLDING_SIZE, INPUT_SIZE, Table
from gateway.runtime.commands import GatewayControl
from gateway.runtime.file_limits import face_cap
from gateway.runtime.log_limit import RateLimitedLog
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.config import BmsConfig

log = logging.getLogger("gateway.faces.bms")

_BIT_FUNCTIONS = frozenset({1, 2, 5, 15})
_INPUT_READ = 4
_WRITE_SINGLE = 6
_CATCH_ALL_UNIT = 0
"""pymodbus sends a request for any unit id it has no device for to the device with id 0."""

MAX_CONNECTIONS = 32
"""TCP clients at once: a BMS uses one or two, a SCADA and a monitoring tool a few more; more would only hold
file handles."""
IDLE_TIMEOUT_S = 120.0
"""A TCP client that sends nothing for this long is disconnected (a BMS polls every few seconds)."""

MIN_BACKLOG = 16
"""Connections waiting to be accepted (and so the most accepted in one go) is the cap, but at least this."""
RTU_TASK = "bms rtu"

_refusals = RateLimitedLog(log, interval_s=60.0)


_PduTrace = Callable[[bool, ModbusPDU], ModbusPDU]
"""pymodbus's type for ``trace_pdu``; it also accepts None back for a received PDU, and then drops the frame."""


class BmsStartError(StartError):
    """The face could not listen (address in use, serial port missing); the message says where."""


class _CappedConnection(BmsConnection):
    def __init__(self, owner: Any, *, idle_timeout_s: float | None, max_connections: int) -> None:
        super().__init__(owner, idle_timeout_s=idle_timeout_s)
        self._max_connections = max_connections

    def callback_connected(self) -> None:
        super().callback_connected()
        listener = self.listener
        if listener is None:
            return
        # pymodbus lists a connection from the moment asyncio accepted its socket; only those already connected
        # count (one evicted before it is connected would keep its socket).
        connected = [c for c in listener.active_connections.values()
                     if isinstance(c, BmsConnection) and c.transport and not c.is_closing]
        if len(connected) <= self._max_connections:
            return
        quietest = min((c for c in connected if c is not self), key=lambda c: c.last_active_s, default=None)
        evicted = quietest if quietest is not None else self
        _refusals.warning("BMS face: %d clients connected, the most allowed; the one silent the longest (%s) was "
                          "disconnected", self._max_connections, evicted.peer)
        evicted.close()


class _TcpServer(ModbusTcpServer):
    def __init__(self, *args: Any, max_connections: int, idle_timeout_s: float | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        # pymodbus listens with asyncio's default backlog (100), and asyncio accepts up to a backlog's worth of
        # connections in one go, before any of them is seen (and evicted) here: a burst would take that many
        # handles at once.
        assert self.comm_params.source_address is not None
        host, port = self.comm_params.source_address
        self.call_create = functools.partial(self.loop.create_server, self.handle_new_connection, host, port,
                                             reuse_address=True, start_serving=True,
                                             backlog=max(MIN_BACKLOG, max_connections))

    def callback_new_connection(self) -> BmsConnection:
        return _CappedConnection(self, idle_timeout_s=self._idle_timeout_s, max_connections=self._max_connections)


class _SerialServer(ModbusSerialServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost = asyncio.Event()
        """Set when the serial port went away (a USB adapter unplugged, its driver reset): pymodbus does not open
        it again by itself."""

    def callback_new_connection(self) -> BmsConnection:
        return BmsConnection(self, idle_timeout_s=None, on_lost=self.lost.set)


class BmsLineLost(StoppedError):
    """The RTU slave's serial port went away: a crash of the ``bms rtu`` task, which opens it again."""


def _peer_text(peer: tuple[str, int]) -> str:
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BmsServer:
    """The BMS face of one gateway; the supervisor owns it, ``start``s it and ``stop``s it.

    With ``config.enabled`` false, ``start`` serves nothing.
    """

    def __init__(self, control: GatewayControl, config: BmsConfig, *, max_connections: int | None = None,
                 idle_timeout_s: float | None = IDLE_TIMEOUT_S, tasks: TaskSupervisor | None = None) -> None:
        """``max_connections``: by default ``MAX_CONNECTIONS``, less if the open-file limit is small; ``tasks``:
        who owns the task that keeps the RTU line open (the gateway's, so a lost port shows as FAULT); a private
        one if None."""
        self._config = config
        self._tasks = tasks if tasks is not None else TaskSupervisor()
        self._max_connections = max_connections if max_connections is not None else face_cap(MAX_CONNECTIONS)
        self._idle_timeout_s = idle_timeout_s
        self._face = BmsFace(control)
        self._access = WriteAccess(config.allow_write_from, config.read_only)
        self._tcp: ModbusTcpServer | None = None
        self._rtu: _SerialServer | None = None
        self._tcp_address: tuple[str, int] | None = None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """Where the TCP server listens (the real port when the configured one is 0), or None when stopped."""
        return self._tcp_address

    async def start(self) -> None:
        cfg = self._config
        if not cfg.enabled:
            log.info("BMS face disabled")
            return
        tcp = _TcpServer([self._device(cfg.unit_id, rtu_port=None), self._unknown_unit()],
                         address=(cfg.host, cfg.port), max_connections=self._max_connections,
                         idle_timeout_s=self._idle_timeout_s)
        if not await _serve(tcp):
            raise BmsStartError(f"BMS face: cannot listen on {cfg.host}:{cfg.port} (address in use or not local?)")
        self._tcp = tcp
        sockname = cast(asyncio.Server, tcp.transport).sockets[0].getsockname()
        self._tcp_address = (str(sockname[0]), int(sockname[1]))
        log.info("BMS face: Modbus TCP on %s:%d, unit %d%s", *self._tcp_address, cfg.unit_id,
                 ", read-only" if cfg.read_only else "")
        if cfg.rtu is not None:
            try:
                self._rtu = await self._open_rtu()
            except BmsStartError:
                await self.stop()
                raise
            self._tasks.start(RTU_TASK, self._keep_rtu)

    async def stop(self) -> None:
        await self._tasks.stop(RTU_TASK)
        for server in (self._tcp, self._rtu):
            if server is not None:
                await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
        self._tcp = self._rtu = None
        self._tcp_address = None

    async def _open_rtu(self) -> _SerialServer:
        rtu_config = self._config.rtu
        assert rtu_config is not None
        rtu = _SerialServer([self._device(self._config.unit_id, rtu_port=rtu_config.device)], framer=FramerType.RTU,
                            port=rtu_config.device, baudrate=rtu_config.baudrate, parity=rtu_config.parity,
                            stopbits=rtu_config.stopbits, bytesize=rtu_config.bytesize,
                            trace_pdu=cast(_PduTrace, self._only_my_unit))
        if not await _serve(rtu):
            await rtu.shutdown()  # type: ignore[no-untyped-call]
            raise BmsStartError(f"BMS face: cannot open serial port {rtu_config.device}")
        log.info("BMS face: Modbus RTU slave on %s, unit %d", rtu_config.device, self._config.unit_id)
        return rtu

    async def _keep_rtu(self) -> None:
        """The task ``bms rtu``: open the port if it was lost, then wait until it is lost again (a crash)."""
        if self._rtu is None:
            self._rtu = await self._open_rtu()
        await self._rtu.lost.wait()
        lost, self._rtu = self._rtu, None
        await lost.shutdown()  # type: ignore[no-untyped-call]
        assert self._config.rtu is not None
        raise BmsLineLost(f"BMS face: serial port {self._config.rtu.device} went away; opening it again")

    def _only_my_unit(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        """RTU: drop requests for other unit ids before pymodbus answers them (returning None drops a frame)."""
        return pdu if sending or pdu.dev_id == self._config.unit_id else None

    def _device(self, unit_id: int, rtu_port: str | None) -> SimDevice:
        return SimDevice(unit_id, action=self._action(rtu_port), simdata=(
            [SimData(0, datatype=DataType.BITS)],
            [SimData(0, datatype=DataType.BITS)],
            [SimData(0, count=HOLDING_SIZE, datatype=DataType.REGISTERS)],
            [SimData(0, count=INPUT_SIZE, datatype=DataType.REGISTERS, readonly=True)],
        ))

    def _action(self, rtu_port: str | None) -> SimAction:
        face, access = self._face, self._access

        async def action(function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
            if function_code in _BIT_FUNCTIONS:
                return ExcCodes.ILLEGAL_FUNCTION
            if set_values is None:
                if function_code == _WRITE_SINGLE:
                    # The echo of FC6: the block holds exactly the value just written, which is what goes back.
                    return None
                table = Table.INPUT if function_code == _INPUT_READ else Table.HOLDING
                result = face.read(table, address, count)
                if isinstance(result, Refusal):
                    return ExcCodes(result.code)
                registers[address - start_address:address - start_address + count] = result
                return None
            if rtu_port is not None:
                origin, permitted = f"bms rtu {rtu_port}", access.permits_rtu()
            else:
                peer = PEER.get()
                origin = f"bms {_peer_text(peer)}" if peer else "bms tcp (unknown client)"
                permitted = peer is not None and access.permits_tcp(peer[0])
            if permitted:
                refusal = face.write(address, [int(v) for v in set_values], origin)
            else:
                refusal = Refusal(ExceptionCode.ILLEGAL_FUNCTION, "writes from this client are not allowed"
                                  + (" (read-only mode)" if self._config.read_only else ""))
            if refusal is None:
                return None
            log.warning("%s: write of HR%d..HR%d refused (exception %d): %s", origin, address,
                        address + len(set_values) - 1, refusal.code, refusal.reason)
            return ExcCodes(refusal.code)

        return action

    @staticmethod
    def _unknown_unit() -> SimDevice:
        async def refuse(function_code: int, start_address: int, address: int, count: int, registers: list[int],
                         set_values: list[int] | list[bool] | None) -> ExcCodes:
            return ExcCodes.GATEWAY_PATH_UNAVIABLE

        # One shared block over the whole address space: pymodbus checks addresses before calling the action.
        return SimDevice(_CATCH_ALL_UNIT, action=refuse,
                         simdata=[SimData(0, count=0x10000, datatype=DataType.REGISTERS)])


async def _serve(server: ModbusTcpServer | ModbusSerialServer) -> bool:
    try:
        await server.serve_forever(background=True)
    except RuntimeError:
        return False
    return True
