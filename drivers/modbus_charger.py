"""The one Modbus charger driver: everything device-specific comes from the profile.

A poll is one transaction per contiguous block of the profile's read plan; values are decoded by the codec, and a
value that makes no sense (6553.5 A, NaN, an unknown state) is left as ``None`` and named in ``reading.invalid``,
never passed on as a number.

Setpoints are made safe before they are sent: clamped down to what the unit can do, rounded *down* to the
register's resolution (never up: the gateway's booking must hold), and anything between 0 and the minimum
current becomes 0. Every ``write_setpoint`` writes the device: what the device has acknowledged has one owner, the
controller, which compares it with the read-back and re-sends when they differ; a driver that skipped "unchanged"
values would swallow exactly that re-send. ``keep_alive`` re-writes the last setpoint where the profile's watchdog
or ``setpoint_refresh_s`` needs it, and what the device forgets after a reconnect or an outage (the profile's
``init_writes`` and the fail-safe settings) is re-sent before the next write.

Ordering where a profile needs enable and setpoint: the setpoint is written *before* charging is enabled, so the
charger never runs for a moment at a stale, higher value left in its register.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from drivers.bus import ModbusBus
from drivers.codec import Decoded, InvalidReading, Value
from drivers.errors import TransientError, UnsupportedOperation
from drivers.model import ChargerCapabilities, ChargerIdentity, ChargerReading, PhaseValues
from drivers.profile import ChargerProfile, KeepAlive, PauseMethod, ReadBlock, Table

T = TypeVar("T")
_EPSILON = 1e-6


async def read_block(bus: ModbusBus, unit: int, block: ReadBlock, timeout_s: float) -> list[int]:
    """One read transaction of a read plan, as register words (bits as 0/1)."""
    device = block.device_id if block.device_id is not None else unit
    if block.table is Table.HOLDING:
        return await bus.read_registers(device, "holding", block.start, block.count, timeout_s)
    if block.table is Table.INPUT:
        return await bus.read_registers(device, "input", block.start, block.count, timeout_s)
    if block.table is Table.COIL:
        return [int(b) for b in await bus.read_bits(device, "coil", block.start, block.count, timeout_s)]
    return [int(b) for b in await bus.read_bits(device, "discrete", block.start, block.count, timeout_s)]


def commandable_a(profile: ChargerProfile, current_a: float) -> float:
    """The setpoint actually sent for a request of ``current_a``: never more than asked, 0 or >= the minimum, a
    whole number of register steps, within what the unit can do. Bad input raises ``ValueError``."""
    if not math.isfinite(current_a) or current_a < 0:
        raise ValueError(f"setpoint {current_a!r} must be a finite current >= 0 A")
    top = min(current_a, profile.max_setpoint_a, profile.nameplate_a)
    step = profile.resolution_a
    value = round(math.floor(top / step + _EPSILON) * step, 9)
    return value if value >= profile.control.min_current_a - _EPSILON else 0.0


class PointValues:
    """Decoded points of one poll, turned into model fields; remembers what was nonsense and why."""

    def __init__(self, decoded: dict[str, Decoded]) -> None:
        self.decoded = decoded
        self.invalid: dict[str, str] = {}

    def bad(self, name: str, reason: str) -> None:
        self.invalid.setdefault(name, reason)

    def number(self, name: str) -> float | None:
        if name not in self.decoded:
            return None
        value = self.decoded[name]
        if isinstance(value, InvalidReading):
            self.bad(name, str(value))
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.bad(name, f"{value!r} is not a number")
            return None
        return float(value)

    def phases(self, prefix: str) -> PhaseValues:
        return (self.number(f"{prefix}_l1"), self.number(f"{prefix}_l2"), self.number(f"{prefix}_l3"))


class ModbusCharger:
    """``drivers.ports.ChargerDriver`` and ``IdentityReader`` for any charger profile on a shared bus.

    ``timeout_s`` bounds each transaction; ``comm_timeout_s`` is the device's communication watchdog the gateway
    plans with (``configure_failsafe`` programs it where the profile can). ``clock`` (seconds, monotonic) decides
    when a refresh or keep-alive is due. ``close`` releases nothing: the ``BusPool`` owns the bus.
    """

    def __init__(self, profile: ChargerProfile, bus: ModbusBus, unit: int, *, timeout_s: float,
                 comm_timeout_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not timeout_s > 0 or not comm_timeout_s > 0:
            raise ValueError("timeouts must be > 0")
        self.profile = profile
        self.bus = bus
        self.unit = unit
        self.timeout_s = timeout_s
        self.comm_timeout_s = comm_timeout_s
        self._clock = clock
        self._plan = profile.read_plan()
        self._capabilities = profile.capabilities()
        quirks = profile.quirks
        if quirks.inter_frame_gap_ms:
            bus.require_gap(unit, quirks.inter_frame_gap_ms / 1000.0)
        self._lock = asyncio.Lock()
        self._needs_init = True
        self._seen_connections = -1
        self._written_a: float | None = None
        """The last setpoint written, for keep-alives that re-write it; None: unknown (never a reason to skip)."""
        self._written_at = 0.0
        self._failsafe: tuple[float, float] | None = None
        self._last_contact: float | None = None
        self._last_keepalive: float | None = None
        self._last_write_at: float | None = None
        self._last_read: tuple[float, ChargerReading] | None = None
        self.last_invalid: dict[str, str] = {}
        """Why each point of the last poll was invalid, for the installer (``probe``) and logs."""

    @property
    def capabilities(self) -> ChargerCapabilities:
        return self._capabilities

    # -- reading ----------------------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        interval = self.profile.quirks.min_read_interval_s
        if interval and self._last_read is not None and self._clock() - self._last_read[0] < interval:
            return self._last_read[1]  # the device must not be polled faster; the last poll still stands
        decoded = await self.read_points(None)
        reading = self._reading(PointValues(decoded))
        self._last_read = (self._clock(), reading)
        return reading

    async def read_points(self, names: Iterable[str] | None) -> dict[str, Decoded]:
        """Decoded values of ``names`` (default: one regular poll), one transaction per contiguous block."""
        plan = self._plan if names is None else self.profile.read_plan(names)
        decoded: dict[str, Decoded] = {}
        for block in plan:
            words = await self._io(read_block(self.bus, self.unit, block, self.timeout_s))
            decoded.update(self.profile.decode_block(block, words))
        return decoded

    def _reading(self, values: PointValues) -> ChargerReading:
        derived = self.profile.derive_state(values.decoded)
        state = None if isinstance(derived, InvalidReading) else derived
        if isinstance(derived, InvalidReading):
            values.bad("state", str(derived))
        readback = self.profile.setpoint_readback_point
        enabled: bool | None = None
        if "enable" in values.decoded:
            raw = values.decoded["enable"]
            if isinstance(raw, InvalidReading):
                values.bad("enable", str(raw))
            else:
                enabled = raw == self.profile.control.enable_on
        error = values.number("error_code")
        reading = ChargerReading(
            state=state,
            current_a=values.phases("current"),
            voltage_v=values.phases("voltage"),
            power_w=values.number("power"),
            energy_wh=values.number("energy"),
            session_energy_wh=values.number("session_energy"),
            setpoint_a=values.number(readback) if readback else None,
            enabled=enabled,
            error_code=int(error) if error is not None else None,
            invalid=(),
        )
        self.last_invalid = dict(values.invalid)
        return replace(reading, invalid=tuple(sorted(values.invalid)))

    async def read_identity(self) -> ChargerIdentity:
        names = [n for n in self.profile.IDENTITY_ROLES if self.profile.has(n)]
        if not names:
            raise UnsupportedOperation(f"profile {self.profile.name!r} declares no identity points")
        decoded = await self.read_points(names)

        def text(name: str) -> str | None:
            value = decoded.get(name)
            if value is None or isinstance(value, InvalidReading):
                return None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return str(value) or None

        return ChargerIdentity(serial=text("serial"), firmware=text("firmware"), model=text("model"))

    # -- commanding -------------------------------------------------------------------------------------------
    def commandable_a(self, current_a: float) -> float:
        return commandable_a(self.profile, current_a)

    async def write_setpoint(self, current_a: float) -> None:
        """Write ``current_a`` (made safe) even if it was written before: the caller decides when to write."""
        target = self.commandable_a(current_a)
        async with self._lock:
            await self._prepare()
            await self._apply(target)

    def _refresh_period_s(self) -> float | None:
        """How often the last setpoint must be re-written even if unchanged (None: never)."""
        periods = [self.profile.quirks.setpoint_refresh_s]
        if self.profile.watchdog.keep_alive is KeepAlive.SETPOINT:
            periods.append(self.profile.watchdog.period_s(self.comm_timeout_s))
        due = [p for p in periods if p is not None]
        return min(due) if due else None

    async def _apply(self, target: float) -> None:
        profile = self.profile
        by_disable = profile.control.pause is PauseMethod.DISABLE
        needs_enable = by_disable or profile.quirks.write_needs_enable
        self._written_a = None  # unknown until the device has acknowledged every step
        if target == 0 and by_disable:
            await self._write_enable(False)
        else:
            await self._write_point("setpoint", target)
            if target > 0 and needs_enable:
                # Always, like the setpoint: charging may have been disabled behind the gateway's back.
                await self._write_enable(True)
                if profile.quirks.write_needs_enable:
                    await self._write_point("setpoint", target)  # the device may have ignored it while disabled
        self._written_a = target
        self._written_at = self._clock()

    async def _write_enable(self, on: bool) -> None:
        control = self.profile.control
        await self._write_point("enable", control.enable_on if on else control.enable_off)

    async def keep_alive(self) -> None:
        watchdog = self.profile.watchdog
        async with self._lock:
            now = self._clock()
            refresh = self._refresh_period_s()
            if refresh is not None and self._written_a is not None and now - self._written_at >= refresh:
                await self._prepare()
                if self._written_a is not None:  # unknown again if the device may have forgotten
                    await self._apply(self._written_a)
            period = watchdog.period_s(self.comm_timeout_s)
            if period is None or watchdog.keep_alive is KeepAlive.SETPOINT:
                return  # a setpoint keep-alive is the re-write above
            if watchdog.keep_alive is KeepAlive.TRAFFIC:
                if self._last_contact is None or now - self._last_contact >= period:
                    await self.read_points(self.profile.state_points())
                return
            if self._last_keepalive is not None and now - self._last_keepalive < period:
                return
            await self._prepare()
            if watchdog.keep_alive is KeepAlive.HEARTBEAT:
                await self._write_point("heartbeat", watchdog.heartbeat_value)
            elif watchdog.keep_alive is KeepAlive.TIMEOUT:
                await self._write_point("failsafe_timeout", self.comm_timeout_s)
            self._last_keepalive = now

    async def configure_failsafe(self, current_a: float, timeout_s: float) -> None:
        profile = self.profile
        point = profile.points.failsafe_current
        if point is None or not point.writable:
            raise UnsupportedOperation(f"profile {profile.name!r} has no writable fail-safe current")
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"fail-safe timeout {timeout_s!r} must be > 0 s")
        current = self.commandable_a(current_a)
        profile.encode("failsafe_current", current)
        if profile.points.failsafe_timeout is not None:
            profile.encode("failsafe_timeout", timeout_s)  # ValueError before anything is written
        elif profile.watchdog.fixed_timeout_s is not None and timeout_s < profile.watchdog.fixed_timeout_s:
            raise ValueError(f"the device's communication timeout is fixed at {profile.watchdog.fixed_timeout_s:g} s "
                             f"(set on the device); plan with at least that, not {timeout_s:g} s")
        async with self._lock:
            await self._prepare()
            await self._write_failsafe(current, timeout_s)
            self._failsafe = (current, timeout_s)
            self.comm_timeout_s = timeout_s

    async def _write_failsafe(self, current_a: float, timeout_s: float) -> None:
        await self._write_point("failsafe_current", current_a)
        if self.profile.points.failsafe_timeout is not None:
            await self._write_point("failsafe_timeout", timeout_s)

    async def close(self) -> None:
        """Nothing to release: the bus belongs to the pool."""

    # -- plumbing -------------------------------------------------------------------------------------------
    async def _prepare(self) -> None:
        """Re-send what the device forgets (init writes, fail-safe) after a reconnect or an outage."""
        if not self._needs_init:
            return
        for write in self.profile.quirks.init_writes:
            await self._write_point(write.point, write.value)
        if self._failsafe is not None:
            await self._write_failsafe(*self._failsafe)
        self._written_a = None
        self._needs_init = False

    async def _write_point(self, name: str, value: Value) -> None:
        point = self.profile.point(name)
        words = self.profile.encode(name, value)
        device = point.device_id if point.device_id is not None else self.unit
        interval = self.profile.quirks.min_write_interval_s
        if interval and self._last_write_at is not None:
            wait = self._last_write_at + interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
        if point.table is Table.COIL:
            if point.write_fc == 15:
                await self._io(self.bus.write_coils(device, point.address, [bool(words[0])], self.timeout_s))
            else:
                await self._io(self.bus.write_coil(device, point.address, bool(words[0]), self.timeout_s))
        else:
            await self._io(self.bus.write_registers(device, point.address, words,
                                                    function_code=16 if point.write_fc == 16 else 6,
                                                    timeout_s=self.timeout_s))
        self._last_write_at = self._clock()

    async def _io(self, operation: Awaitable[T]) -> T:
        try:
            result = await operation
        except TransientError:
            self._needs_init = True  # it may have power-cycled meanwhile and forgotten everything
            raise
        self._last_contact = self._clock()
        if self._seen_connections not in (-1, self.bus.connections):
            self._needs_init = True  # the line was reopened since we last talked: a TCP device may have rebooted
        self._seen_connections = self.bus.connections
        return result
