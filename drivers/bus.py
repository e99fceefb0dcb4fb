"""One owner per Modbus line: a TCP endpoint, an RTU-over-TCP device server, or an RS-485 serial port.

Every unit id behind an endpoint shares one ``ModbusBus``, which holds the only pymodbus client for it and runs one
transaction at a time. Why one owner:

* RS-485 is half duplex and a serial port opens exclusively; two clients on one line would collide.
* Failure handling is a property of the line, not of a charger: the inter-frame gap, the silence after a timeout
  (so a late answer cannot be taken for the next request's, pymodbus pitfall 5), reconnect backoff, and the
  decision that a TCP socket is half-open all need to see every request on the line.

Timeouts are ours, not pymodbus's: the client is built with ``retries=0``, no auto-reconnect and a very long
internal timeout, and each transaction is bounded by ``asyncio.timeout(timeout_s)``. A dead unit therefore holds
the line for its own timeout (plus, on RTU, the late-answer guard) and never longer; pymodbus never counts
no-responses and never closes a shared socket behind our back.

Every pymodbus, serial and socket exception is translated into ``drivers.errors`` here; nothing else leaves.
Invalid arguments (a unit id of 300, 126 registers) are programming errors and raise ``ValueError``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.errors import (
    ConnectionLost,
    DeviceBusy,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    GatewayPathError,
)
from drivers.transport import BusOptions, Endpoint, SerialLine, TcpEndpoint, frames_have_no_transaction_id

_log = logging.getLogger(__name__)

RegisterTable = Literal["holding", "input"]
BitTable = Literal["coil", "discrete"]

MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123
MAX_READ_BITS = 2000
MAX_WRITE_COILS = 1968
_PYMODBUS_TIMEOUT_S = 3600.0
"""pymodbus's own response timeout: far beyond ours, so it never fires (see the module docstring)."""

_BUSY_CODES = frozenset({5, 6})
_GATEWAY_CODES = frozenset({10, 11})
_FC_READ = {"holding": 3, "input": 4, "coil": 1, "discrete": 2}


@dataclass(frozen=True, slots=True)
class LinkStats:
    """How well one unit on a bus answers; the gateway shows this as link quality."""

    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_latency_s: float | None = None
    last_success_at: float | None = None
    """In the clock the bus was built with (monotonic by default)."""
    last_error: str | None = None

    @property
    def success_ratio(self) -> float | None:
        total = self.successes + self.failures
        return self.successes / total if total else None


Client = AsyncModbusTcpClient | AsyncModbusSerialClient
Check = Callable[[Any], str | None]
"""Returns why a (non-exception) response does not answer the request, or None if it does."""


def _check_unit(unit: int) -> None:
    if not 1 <= unit <= 255:
        raise ValueError(f"unit id {unit} outside 1..255")


def _check_span(address: int, count: int, most: int) -> None:
    if not 1 <= count <= most:
        raise ValueError(f"count {count} outside 1..{most}")
    if address < 0 or address + count > 0x10000:
        raise ValueError(f"addresses {address}..{address + count - 1} outside 0..65535")


def _check_timeout(timeout_s: float) -> None:
    if not timeout_s > 0:
        raise ValueError(f"timeout {timeout_s} must be > 0")


def rejection(code: int, what: str) -> DriverError:
    """The driver error for a Modbus exception response ``code``."""
    message = f"{what}: Modbus exception {code}"
    if code in _BUSY_CODES:
        return DeviceBusy(message)
    if code in _GATEWAY_CODES:
        return GatewayPathError(message)
    return DeviceRejected(message, code)


def _raise_if_cancelled() -> None:
    """pymodbus connects and awaits answers with ``asyncio.wait_for``, which on Python 3.11 loses a cancellation
    that arrives together with the outcome (an answer, a refused connection): the caller would carry on as if
    nothing happened, and a shutdown that cancels it would wait for ever. A task being cancelled stops here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class ModbusBus:
    """The one client and lock for one endpoint; methods are safe to call from many tasks at once."""

    def __init__(self, endpoint: Endpoint, options: BusOptions | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.options = options or BusOptions()
        self._clock = clock
        self._client: Client = self._make_client()
        self._lock = asyncio.Lock()
        self._rtu = frames_have_no_transaction_id(endpoint)
        self._line_gap_s = max(endpoint.frame_gap_s if isinstance(endpoint, SerialLine) else 0.0,
                               self.options.min_frame_gap_s)
        self._unit_gap_s: dict[int, float] = {}
        self._stats: dict[int, LinkStats] = {}
        self._last_unit: int | None = None
        self._idle_since = 0.0  # loop time the line last fell silent
        self._quiet_until = 0.0  # loop time before which nothing may be sent (late-answer guard)
        self._next_connect_at = 0.0
        self._backoff_s = self.options.backoff_initial_s
        self._online = False
        self._consecutive_timeouts = 0
        self._closed = False
        self._connections = 0

    def _make_client(self) -> Client:
        endpoint = self.endpoint
        if isinstance(endpoint, TcpEndpoint):
            return AsyncModbusTcpClient(
                endpoint.host, port=endpoint.port,
                framer=FramerType.RTU if endpoint.rtu_framing else FramerType.SOCKET,
                timeout=_PYMODBUS_TIMEOUT_S, retries=0, reconnect_delay=0, trace_connect=self._on_connect_change)
        return AsyncModbusSerialClient(
            endpoint.device, framer=FramerType.RTU, baudrate=endpoint.baudrate, bytesize=endpoint.bytesize,
            parity=endpoint.parity, stopbits=endpoint.stopbits,
            timeout=_PYMODBUS_TIMEOUT_S, retries=0, reconnect_delay=0, trace_connect=self._on_connect_change)

    def _on_connect_change(self, connected: bool) -> None:
        """Fail a request in flight as soon as its connection drops, instead of letting it run into its timeout.

        pymodbus leaves the request waiting on its response future when the peer closes; completing that future
        with ``ConnectionException`` ends the wait at once (and is ignored if no request is in flight).
        """
        if connected:
            return
        pending = getattr(self._client.ctx, "response_future", None)
        if isinstance(pending, asyncio.Future) and not pending.done():
            pending.set_exception(ConnectionException("connection closed by the peer"))

    # -- configuration --------------------------------------------------------------------------------------------
    def require_gap(self, unit: int, gap_s: float) -> None:
        """Keep at least ``gap_s`` of silence before and after every frame to ``unit`` (a profile quirk)."""
        _check_unit(unit)
        if gap_s < 0:
            raise ValueError("gap must be >= 0")
        self._unit_gap_s[unit] = max(gap_s, self._unit_gap_s.get(unit, 0.0))

    def stats(self, unit: int) -> LinkStats:
        return self._stats.get(unit, LinkStats())

    @property
    def connections(self) -> int:
        """How many times the bus has (re)connected: a driver whose device forgets its settings on a power cycle
        re-sends them when this changes."""
        return self._connections

    @property
    def connected(self) -> bool:
        return self._link_up()

    def _link_up(self) -> bool:
        return bool(self._client.connected)

    # -- transactions ---------------------------------------------------------------------------------------------
    async def read_registers(self, unit: int, table: RegisterTable, address: int, count: int,
                             timeout_s: float) -> list[int]:
        """Read ``count`` registers with FC3 (holding) or FC4 (input)."""
        _check_span(address, count, MAX_READ_REGISTERS)
        if table not in ("holding", "input"):
            raise ValueError(f"unknown register table {table!r}")
        fc = _FC_READ[table]

        def call(client: Client) -> Awaitable[Any]:
            if table == "holding":
                return client.read_holding_registers(address, count=count, device_id=unit)
            return client.read_input_registers(address, count=count, device_id=unit)

        def check(rsp: Any) -> str | None:
            got = len(getattr(rsp, "registers", None) or ())
            return None if got == count else f"{got} registers in the answer, {count} requested"

        rsp = await self._transact(unit, timeout_s, f"FC{fc} {address}+{count}", fc, call, check)
        return [int(r) for r in rsp.registers]

    async def read_bits(self, unit: int, table: BitTable, address: int, count: int, timeout_s: float) -> list[bool]:
        """Read ``count`` coils (FC1) or discrete inputs (FC2)."""
        _check_span(address, count, MAX_READ_BITS)
        if table not in ("coil", "discrete"):
            raise ValueError(f"unknown bit table {table!r}")
        fc = _FC_READ[table]
        padded = (count + 7) // 8 * 8

        def call(client: Client) -> Awaitable[Any]:
            if table == "coil":
                return client.read_coils(address, count=count, device_id=unit)
            return client.read_discrete_inputs(address, count=count, device_id=unit)

        def check(rsp: Any) -> str | None:
            got = len(getattr(rsp, "bits", None) or ())
            return None if got == padded else f"{got} bits in the answer, {count} requested"

        rsp = await self._transact(unit, timeout_s, f"FC{fc} {address}+{count}", fc, call, check)
        return [bool(b) for b in rsp.bits[:count]]

    async def write_registers(self, unit: int, address: int, values: list[int], *,
                              function_code: Literal[6, 16], timeout_s: float) -> None:
        """Write with FC6 (exactly one register) or FC16 (one request, as devices need for 32-bit values)."""
        if function_code not in (6, 16):
            raise ValueError(f"function code {function_code} is not a register write (6 or 16)")
        _check_span(address, len(values), 1 if function_code == 6 else MAX_WRITE_REGISTERS)
        if any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError(f"register values {values} outside 0..65535")
        words = [int(v) for v in values]

        def call(client: Client) -> Awaitable[Any]:
            if function_code == 6:
                return client.write_register(address, words[0], device_id=unit)
            return client.write_registers(address, words, device_id=unit)

        def check(rsp: Any) -> str | None:
            if getattr(rsp, "address", None) != address:
                return f"answer names address {getattr(rsp, 'address', None)}, {address} written"
            if function_code == 6 and list(getattr(rsp, "registers", [])) != words:
                return f"echo {getattr(rsp, 'registers', None)} differs from {words} written"
            if function_code == 16 and getattr(rsp, "count", None) != len(words):
                return f"answer confirms {getattr(rsp, 'count', None)} registers, {len(words)} written"
            return None

        await self._transact(unit, timeout_s, f"FC{function_code} {address}={words}", function_code, call, check)

    async def write_coil(self, unit: int, address: int, value: bool, timeout_s: float) -> None:
        """Write one coil with FC5."""
        _check_span(address, 1, 1)

        def call(client: Client) -> Awaitable[Any]:
            return client.write_coil(address, value, device_id=unit)

        def check(rsp: Any) -> str | None:
            if getattr(rsp, "address", None) != address or list(getattr(rsp, "bits", []))[:1] != [value]:
                return "the echo differs from the coil written"
            return None

        await self._transact(unit, timeout_s, f"FC5 {address}={value}", 5, call, check)

    async def write_coils(self, unit: int, address: int, values: list[bool], timeout_s: float) -> None:
        """Write coils with FC15 (some devices accept only this function code, even for one coil)."""
        _check_span(address, len(values), MAX_WRITE_COILS)
        bits = [bool(v) for v in values]

        def call(client: Client) -> Awaitable[Any]:
            return client.write_coils(address, bits, device_id=unit)

        def check(rsp: Any) -> str | None:
            if getattr(rsp, "address", None) != address or getattr(rsp, "count", None) != len(bits):
                return "the answer names other coils than those written"
            return None

        await self._transact(unit, timeout_s, f"FC15 {address}={bits}", 15, call, check)

    async def close(self) -> None:
        """Close the client; later calls raise ``ConnectionLost``."""
        async with self._lock:
            self._closed = True
            self._client.close()
            self._online = False

    # -- the one transaction path ---------------------------------------------------------------------------------
    async def _transact(self, unit: int, timeout_s: float, what: str, fc: int,
                        call: Callable[[Client], Awaitable[Any]], check: Check) -> Any:
        _check_unit(unit)
        _check_timeout(timeout_s)
        async with self._lock:
            await self._ensure_connected()
            await self._wait_for_silence(unit)
            loop = asyncio.get_running_loop()
            started = self._clock()
            try:
                async with asyncio.timeout(timeout_s):
                    rsp = await call(self._client)
            except TimeoutError:
                if not self._link_up():
                    raise self._lost(unit, f"unit {unit} {what}: connection lost") from None
                raise self._failed(unit, DeviceTimeout(f"unit {unit} {what}: no answer within {timeout_s:g} s"),
                                   timed_out=True) from None
            except ConnectionException as exc:
                raise self._lost(unit, f"unit {unit} {what}: {exc}") from None
            except ModbusIOException as exc:
                raise self._failed(unit, DeviceTimeout(f"unit {unit} {what}: invalid answer ({exc})"),
                                   timed_out=True) from None
            except (ModbusException, struct.error) as exc:
                # pymodbus raises these on a frame it cannot decode.
                raise self._failed(unit, DeviceTimeout(f"unit {unit} {what}: undecodable answer ({exc})"),
                                   timed_out=True) from None
            except OSError as exc:  # serial.SerialException is an OSError
                raise self._lost(unit, f"unit {unit} {what}: {exc}") from None
            finally:
                self._idle_since = loop.time()
                self._last_unit = unit
                _raise_if_cancelled()
            if rsp.isError():
                code = int(getattr(rsp, "exception_code", 0))
                self._consecutive_timeouts = 0
                raise self._failed(unit, rejection(code, f"unit {unit} {what}"), timed_out=False)
            if int(rsp.function_code) != fc:
                raise self._failed(unit, DeviceTimeout(
                    f"unit {unit} {what}: answer has function code {rsp.function_code} (a late answer to an "
                    "earlier request?)"), timed_out=True)
            if problem := check(rsp):
                raise self._failed(unit, DeviceTimeout(
                    f"unit {unit} {what}: answer does not match the request: {problem}"), timed_out=True)
            self._consecutive_timeouts = 0
            self._stats[unit] = replace(self.stats(unit), successes=self.stats(unit).successes + 1,
                                        consecutive_failures=0, last_latency_s=self._clock() - started,
                                        last_success_at=self._clock())
            return rsp

    async def _ensure_connected(self) -> None:
        if self._closed:
            raise ConnectionLost(f"{self.endpoint.describe()}: bus closed")
        if self._link_up():
            return
        if self._online:
            _log.warning("%s: connection lost", self.endpoint.describe())
            self._online = False
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._next_connect_at:
            raise ConnectionLost(f"{self.endpoint.describe()}: not connected; next attempt in "
                                 f"{self._next_connect_at - now:.1f} s")
        self._client.close()  # make sure no half-dead transport is left behind before opening a new one
        try:
            async with asyncio.timeout(self.options.connect_timeout_s):
                ok = await self._client.connect()
        except TimeoutError:
            ok = False
        except (ModbusException, OSError, ValueError) as exc:
            _log.debug("%s: connect failed: %s", self.endpoint.describe(), exc)
            ok = False
        _raise_if_cancelled()
        if not ok or not self._link_up():
            self._client.close()
            self._next_connect_at = loop.time() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self.options.backoff_max_s)
            raise ConnectionLost(f"{self.endpoint.describe()}: cannot connect")
        self._backoff_s = self.options.backoff_initial_s
        self._next_connect_at = 0.0
        self._consecutive_timeouts = 0
        _log.info("%s: connected", self.endpoint.describe())
        self._online = True
        self._connections += 1
        self._idle_since = loop.time()

    async def _wait_for_silence(self, unit: int) -> None:
        """Honour the inter-frame gap and the late-answer guard, then drop whatever arrived meanwhile."""
        loop = asyncio.get_running_loop()
        gap = max(self._line_gap_s, self._unit_gap_s.get(unit, 0.0),
                  self._unit_gap_s.get(self._last_unit, 0.0) if self._last_unit is not None else 0.0)
        ready_at = max(self._idle_since + gap, self._quiet_until)
        delay = ready_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._rtu and self._quiet_until:
            # pymodbus drops a complete late frame that arrives with no request outstanding; a partial one would
            # sit in its receive buffer, so discard that too before the next frame goes out.
            self._client.ctx.recv_buffer = b""
            self._quiet_until = 0.0

    def _failed(self, unit: int, error: DriverError, *, timed_out: bool) -> DriverError:
        stats = self.stats(unit)
        self._stats[unit] = replace(stats, failures=stats.failures + 1,
                                    consecutive_failures=stats.consecutive_failures + 1, last_error=str(error))
        if timed_out:
            if self._rtu:
                self._quiet_until = asyncio.get_running_loop().time() + self.options.late_answer_guard_s
            else:
                self._consecutive_timeouts += 1
                if self._consecutive_timeouts >= self.options.timeouts_before_reconnect:
                    _log.warning("%s: %d timeouts in a row on every unit, reopening the connection",
                                 self.endpoint.describe(), self._consecutive_timeouts)
                    self._client.close()
                    self._consecutive_timeouts = 0
        return error

    def _lost(self, unit: int, message: str) -> DriverError:
        self._client.close()
        if self._online:
            _log.warning("%s: connection lost", self.endpoint.describe())
        self._online = False
        return self._failed(unit, ConnectionLost(message), timed_out=False)


class BusPool:
    """Hands out the one bus per endpoint; the gateway owns the pool and closes it on shutdown."""

    def __init__(self, options: BusOptions | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options or BusOptions()
        self._clock = clock
        self._buses: dict[str, ModbusBus] = {}

    def bus_for(self, endpoint: Endpoint) -> ModbusBus:
        """The shared bus for ``endpoint``; the same line named with different settings is a configuration error."""
        bus = self._buses.get(endpoint.key)
        if bus is None:
            bus = self._buses[endpoint.key] = ModbusBus(endpoint, self._options, clock=self._clock)
        elif bus.endpoint != endpoint:
            raise ValueError(f"{endpoint.key} is configured twice with different settings: "
                             f"{bus.endpoint.describe()} and {endpoint.describe()}")
        return bus

    @property
    def buses(self) -> tuple[ModbusBus, ...]:
        return tuple(self._buses.values())

    async def close(self) -> None:
        for bus in self._buses.values():
            await bus.close()
        self._buses.clear()
