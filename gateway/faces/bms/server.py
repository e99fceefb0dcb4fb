"""The BMS face on the wire: a pymodbus 3.16 TCP server, and optionally an RTU slave, serving ``BmsFace``.

pymodbus calls one async ``action`` per request with the register block of the addressed table. The action here
never awaits: it answers reads from the latest snapshot and turns writes into commands synchronously (an action
that suspends lets pymodbus label an answer with the next request's TCP transaction id). The register blocks are
sized for the largest site; which addresses exist right now (how many chargers there are) is the face's call.

Unit ids. TCP answers the configured unit id; any other id, 0 and 255 included, gets exception 10 (gateway path
unavailable) at once, so a master set to the wrong id sees why instead of timing out. The RTU slave answers only
its unit id and stays silent for every other id, as a slave on a shared RS-485 line must; a broadcast (unit 0) is
ignored too, because a change of limit nobody confirms is not one a gateway should make.

Client address. pymodbus gives the action no connection, but it handles each request, action included, in one
task of that connection's handler. The handler here records the peer in a context variable for that task, and
the action reads it: the origin logged with each write is "bms 10.0.0.5:53122".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import cast

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from gateway.errors import StartError
from gateway.faces.bms.access import WriteAccess
from gateway.faces.bms.face import BmsFace, ExceptionCode, Refusal
from gateway.faces.bms.register_map import HOLDING_SIZE, INPUT_SIZE, Table
from gateway.runtime.commands import GatewayControl
from gateway.site.config import BmsConfig

log = logging.getLogger("gateway.faces.bms")

_BIT_FUNCTIONS = frozenset({1, 2, 5, 15})
_INPUT_READ = 4
_WRITE_SINGLE = 6
_CATCH_ALL_UNIT = 0
"""pymodbus sends a request for any unit id it has no device for to the device with id 0."""

_PEER: ContextVar[tuple[str, int] | None] = ContextVar("bms_peer", default=None)
"""The TCP client of the request being handled in this task (see the module docstring)."""


_PduTrace = Callable[[bool, ModbusPDU], ModbusPDU]
"""pymodbus's type for ``trace_pdu``; it also accepts None back for a received PDU, and then drops the frame."""


class BmsStartError(StartError):
    """The face could not listen (address in use, serial port missing); the message says where."""


class _PeerRecordingHandler(ServerRequestHandler):
    async def handle_request(self) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        _PEER.set((str(peer[0]), int(peer[1])) if peer else None)
        await super().handle_request()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated


class _TcpServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _PeerRecordingHandler(  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
            self, self.trace_packet, self.trace_pdu, self.trace_connect)


def _peer_text(peer: tuple[str, int]) -> str:
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BmsServer:
    """The BMS face of one gateway; the supervisor owns it, ``start``s it and ``stop``s it.

    With ``config.enabled`` false, ``start`` serves nothing.
    """

    def __init__(self, control: GatewayControl, config: BmsConfig) -> None:
        self._config = config
        self._face = BmsFace(control)
        self._access = WriteAccess(config.allow_write_from, config.read_only)
        self._tcp: ModbusTcpServer | None = None
        self._rtu: ModbusSerialServer | None = None
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
                         address=(cfg.host, cfg.port))
        if not await _serve(tcp):
            raise BmsStartError(f"BMS face: cannot listen on {cfg.host}:{cfg.port} (address in use or not local?)")
        self._tcp = tcp
        sockname = cast(asyncio.Server, tcp.transport).sockets[0].getsockname()
        self._tcp_address = (str(sockname[0]), int(sockname[1]))
        log.info("BMS face: Modbus TCP on %s:%d, unit %d%s", *self._tcp_address, cfg.unit_id,
                 ", read-only" if cfg.read_only else "")
        if cfg.rtu is not None:
            rtu = ModbusSerialServer([self._device(cfg.unit_id, rtu_port=cfg.rtu.device)], framer=FramerType.RTU,
                                     port=cfg.rtu.device, baudrate=cfg.rtu.baudrate, parity=cfg.rtu.parity,
                                     stopbits=cfg.rtu.stopbits, bytesize=cfg.rtu.bytesize,
                                     trace_pdu=cast(_PduTrace, self._only_my_unit))
            if not await _serve(rtu):
                await self.stop()
                raise BmsStartError(f"BMS face: cannot open serial port {cfg.rtu.device}")
            self._rtu = rtu
            log.info("BMS face: Modbus RTU slave on %s, unit %d", cfg.rtu.device, cfg.unit_id)

    async def stop(self) -> None:
        for server in (self._tcp, self._rtu):
            if server is not None:
                await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
        self._tcp = self._rtu = None
        self._tcp_address = None

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
                peer = _PEER.get()
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
