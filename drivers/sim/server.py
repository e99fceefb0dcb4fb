"""Serving simulated devices over real Modbus TCP or RTU, with faults switchable per unit at run time.

A ``SimServer`` puts any number of ``RegisterModel``s (one per unit id) behind one pymodbus 3.16 server, the way
several chargers share an RS-485 line or sit behind one TCP endpoint. The models answer from memory and validate
writes synchronously: the pymodbus ``action`` callback never awaits (an action that suspends makes a TCP server
label its answer with the next request's transaction id, pymodbus notes §2.6). Four separate tables per unit, as
chargers have (a shared block would make FC4 return what FC6 wrote).

Faults (``drivers.sim.faults``) sit in two places: ``exception`` and ``garbage`` in the action, where the answer is
made; ``silent``, ``late`` and ``drop`` where the answer is sent, in a request handler that holds it back, delays
it with a loop timer the server owns (and cancels on stop), or closes the connection.

Unknown unit ids: on TCP a catch-all device answers exception 10 (gateway path unavailable), as a serial device
server would; on RTU they get no answer at all, as on a real line where nobody has that address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.sim.faults import NO_FAULT, Fault, FaultKind
from drivers.transport import SerialLine

_log = logging.getLogger(__name__)

Table = Literal["coil", "discrete", "holding", "input"]
_TABLE_OF_FC: dict[int, Table] = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 3: "holding", 6: "holding",
                                  16: "holding", 23: "holding", 4: "input"}
_TABLES: tuple[Table, ...] = ("coil", "discrete", "holding", "input")
_BITS_PER_REGISTER = 16


@dataclass(frozen=True, slots=True)
class Span:
    """A contiguous run of addresses a model serves in one table."""

    address: int
    count: int
    writable: bool = False


class RegisterModel(Protocol):
    """One simulated unit's register map. Called from inside the pymodbus action: must be fast and never block."""

    def spans(self) -> Mapping[Table, Sequence[Span]]:
        """The addresses that exist; anything else answers exception 2, as on a real device."""
        ...

    def read(self, table: Table, address: int, count: int, *, garbage: bool) -> list[int]:
        """``count`` words (bits as 0/1) from ``address``; addresses outside the spans read 0. ``garbage``: answer
        nonsense the driver must recognise as invalid."""
        ...

    def write(self, table: Table, address: int, values: Sequence[int], function_code: int) -> int | None:
        """Apply a write at once (the echo and the next read must show it); return an exception code to refuse.
        ``function_code`` lets a model refuse a write the device does not accept (FC16 where it takes only FC6)."""
        ...


@dataclass(frozen=True, slots=True)
class TcpListen:
    host: str = "127.0.0.1"
    port: int = 0
    """0 lets the OS choose; read the bound port from ``SimServer.port`` after ``start``."""


Listen = TcpListen | SerialLine


class SimServer:
    """Serves ``models`` (unit id -> model) on one TCP port or serial line; owns its pymodbus server and timers."""

    def __init__(self, models: Mapping[int, RegisterModel], listen: Listen) -> None:
        if not models:
            raise ValueError("a simulator server needs at least one unit")
        for unit in models:
            if not 1 <= unit <= 247:
                raise ValueError(f"unit id {unit} outside 1..247")
        self.models = dict(models)
        self.listen = listen
        self._faults: dict[int, Fault] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    # -- faults ---------------------------------------------------------------------------------------------------
    def set_fault(self, unit: int, fault: Fault) -> None:
        if unit not in self.models:
            raise KeyError(f"unit {unit} is not served here")
        if fault.kind is FaultKind.NONE:
            self._faults.pop(unit, None)
        else:
            self._faults[unit] = fault

    def fault(self, unit: int) -> Fault:
        return self._faults.get(unit, NO_FAULT)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        devices = [self._device(unit, model) for unit, model in sorted(self.models.items())]
        owner = self
        if isinstance(self.listen, TcpListen):
            devices.append(_catch_all())

            class TcpServer(ModbusTcpServer):
                def callback_new_connection(self) -> ServerRequestHandler:
                    return _FaultyHandler(self, owner)

            self._server = TcpServer(devices, address=(self.listen.host, self.listen.port))
        else:
            line = self.listen
            served = frozenset(self.models)

            class SerialServer(ModbusSerialServer):
                def callback_new_connection(self) -> ServerRequestHandler:
                    return _FaultyHandler(self, owner)

            def only_served_units(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
                # pymodbus drops a request when this returns None: a unit nobody serves stays silent on the line.
                return pdu if sending or pdu.dev_id in served else cast(ModbusPDU, None)

            self._server = SerialServer(
                devices, port=line.device, framer=FramerType.RTU, baudrate=line.baudrate, parity=line.parity,
                stopbits=line.stopbits, bytesize=line.bytesize, trace_pdu=only_served_units)
        await self._server.serve_forever(background=True)

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful when listening on port 0)."""
        if self._server is None or not isinstance(self.listen, TcpListen):
            raise RuntimeError("not a started TCP server")
        listener = cast(asyncio.Server, self._server.transport)
        return int(listener.sockets[0].getsockname()[1])

    def describe(self) -> str:
        units = ",".join(str(u) for u in sorted(self.models))
        if isinstance(self.listen, TcpListen):
            where = f"tcp {self.listen.host}:{self.port if self._server else self.listen.port}"
        else:
            where = self.listen.describe()
        return f"{where} units {units}"

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the send side of faults (called by the request handler) ------------------------------------------------
    def schedule_late(self, delay_s: float, send: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            send(*args)

        timer = loop.call_later(delay_s, fire)
        self._timers.add(timer)

    # -- the answer side --------------------------------------------------------------------------------------------
    def _device(self, unit: int, model: RegisterModel) -> SimDevice:
        spans = model.spans()
        tables: list[list[SimData]] = []
        for table in _TABLES:
            bits = table in ("coil", "discrete")
            kind = DataType.BITS if bits else DataType.REGISTERS
            blocks = [SimData(s.address, count=s.count, datatype=kind, readonly=not s.writable)
                      for s in sorted(spans.get(table, ()), key=lambda s: s.address)]
            tables.append(blocks or [SimData(0, datatype=kind, readonly=True)])

        async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                         values: list[int] | list[bool] | None) -> ExcCodes | None:
            return self._answer(unit, model, fc, start, address, count, registers, values)

        return SimDevice(unit, simdata=(tables[0], tables[1], tables[2], tables[3]), action=action)

    def _answer(self, unit: int, model: RegisterModel, fc: int, start: int, address: int, count: int,
                registers: list[int], values: list[int] | list[bool] | None) -> ExcCodes | None:
        """Synchronous by design (see the module docstring)."""
        fault = self.fault(unit)
        if fault.kind is FaultKind.EXCEPTION:
            return ExcCodes(fault.exception_code)
        table = _TABLE_OF_FC.get(fc)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        bits = table in ("coil", "discrete")
        if values is not None:
            code = model.write(table, address, [int(v) for v in values], fc)
            return ExcCodes(code) if code else None
        # A read, or the echo half of FC5/FC6/FC23: fill the requested part of the block from the model.
        garbage = fault.kind is FaultKind.GARBAGE and fc in (1, 2, 3, 4)
        if bits:
            first = address // _BITS_PER_REGISTER  # pymodbus passes the bit address and a count of registers
            words = model.read(table, first * _BITS_PER_REGISTER, count * _BITS_PER_REGISTER, garbage=garbage)
            for i in range(count):
                chunk = words[i * _BITS_PER_REGISTER:(i + 1) * _BITS_PER_REGISTER]
                registers[first - start + i] = sum(1 << j for j, bit in enumerate(chunk) if bit)
        else:
            registers[address - start:address - start + count] = model.read(table, address, count, garbage=garbage)
        return None


def _catch_all() -> SimDevice:
    async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                     values: list[int] | list[bool] | None) -> ExcCodes | None:
        return ExcCodes.GATEWAY_PATH_UNAVIABLE

    return SimDevice(0, simdata=[SimData(0, count=0xFFFF, datatype=DataType.REGISTERS)], action=action)


class _FaultyHandler(ServerRequestHandler):
    """pymodbus's per-connection handler, with the send side of the faults."""

    def __init__(self, server: Any, owner: SimServer) -> None:
        super().__init__(server, server.trace_packet, server.trace_pdu, server.trace_connect)  # type: ignore[no-untyped-call]
        self._owner = owner

    def server_send(self, pdu: Any, addr: Any) -> None:
        fault = self._owner.fault(int(pdu.dev_id)) if pdu is not None else NO_FAULT
        if fault.kind is FaultKind.SILENT:
            return
        if fault.kind is FaultKind.DROP:
            if isinstance(self._owner.listen, TcpListen):
                self.close()
            return
        if fault.kind is FaultKind.LATE:
            self._owner.schedule_late(fault.late_s, self._send_if_open, pdu, addr)
            return
        super().server_send(pdu, addr)  # type: ignore[no-untyped-call]

    def _send_if_open(self, pdu: Any, addr: Any) -> None:
        if self.transport:
            super().server_send(pdu, addr)  # type: ignore[no-untyped-call]
