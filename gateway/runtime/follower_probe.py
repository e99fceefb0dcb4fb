"""A live read of a would-be follower, before the gateway accepts it.

An installer who types a wrong address, unit id or profile should hear so at once, on the page, not later as a
unit that is "unavailable: timeout" or, worse, one whose currents are read from the wrong registers. So a follower
is added only after one poll of it, with the very profile and transport it would be added with, answered in time
and made sense: a state, and no point outside its valid range.

The probe only reads: no setpoint, no enable, no init writes, no fail-safe. A device on a line the gateway already
drives (the same RS-485 port, or the same TCP endpoint) is read through that line's bus, which serialises the
probe with the polls; any other device is read through a bus of its own, closed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.bus import BusPool, ModbusBus
from drivers.errors import (
    ConnectionLost,
    DeviceBusy,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    GatewayPathError,
    UnsupportedOperation,
)
from drivers.modbus_charger import ModbusCharger
from drivers.model import ChargerIdentity, ChargerReading
from drivers.profile import ProfileRegistry
from drivers.transport import BusOptions
from gateway.errors import PeerError
from gateway.i18n.text import msgid, tr
from gateway.runtime.endpoints import endpoint_of
from gateway.site.config import ChargerConfig, OcppTransport

MAX_TRANSACTION_S = 3.0
"""A transport's own timeout may be long (a slow serial device server); a probe waits at most this per request."""
MAX_PROBE_S = 10.0
"""The whole probe, identity included: the installer is waiting at the page."""


class ProbeFailed(PeerError):
    """The device did not answer, refused, or answered nonsense; the message says what to check.

    ``field`` names the part of the follower the installer should look at: ``transport`` (address, unit id, line
    settings), ``transport.unit`` (a serial device server answered for a unit that did not) or ``profile`` (the
    register map does not fit this device).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What the device said: shown to the installer beside the new follower."""

    reading: ChargerReading
    identity: ChargerIdentity | None
    latency_ms: float | None


Probe = Callable[[ChargerConfig], Awaitable[ProbeReport]]
"""Reads a would-be follower once; raises ``ProbeFailed``."""


_ADVICE: tuple[tuple[type[DriverError], str, str], ...] = (
    (DeviceTimeout, "transport", msgid("probe.advice.timeout")),
    (ConnectionLost, "transport", msgid("probe.advice.no_connection")),
    (GatewayPathError, "transport.unit", msgid("probe.advice.gateway_path")),
    (DeviceBusy, "transport", msgid("probe.advice.busy")),
    (DeviceRejected, "profile", msgid("probe.advice.rejected")),
)
"""What to check, by what went wrong (message ids)."""


class FollowerProbe:
    """``Probe`` over Modbus, sharing the gateway's buses (``pool``) where the device is on one of its lines."""

    def __init__(self, registry: ProfileRegistry, pool: BusPool | None = None, *,
                 max_transaction_s: float = MAX_TRANSACTION_S, max_probe_s: float = MAX_PROBE_S) -> None:
        self.registry = registry
        self.pool = pool
        self.max_transaction_s = max_transaction_s
        self.max_probe_s = max_probe_s

    async def __call__(self, charger: ChargerConfig) -> ProbeReport:
        transport = charger.transport
        if isinstance(transport, OcppTransport) or charger.profile is None:
            raise ProbeFailed(tr("probe.ocpp"), "transport")
        try:
            profile = self.registry.charger(charger.profile)
        except KeyError:
            raise ProbeFailed(tr("probe.profile_unknown", profile=charger.profile), "profile") from None
        endpoint = endpoint_of(transport)
        shared = self._shared_bus(endpoint.key)
        if shared is not None and shared.endpoint != endpoint:
            raise ProbeFailed(tr("probe.line_settings_differ", line=endpoint.key, used=shared.endpoint.describe()),
                              "transport")
        timeout_s = min(transport.timeout_s, self.max_transaction_s)
        bus = shared or ModbusBus(endpoint, BusOptions(connect_timeout_s=timeout_s))
        driver = ModbusCharger(profile, bus, transport.unit, timeout_s=timeout_s)
        where = tr("probe.where", endpoint=endpoint.describe(), unit=transport.unit)
        try:
            async with asyncio.timeout(self.max_probe_s):
                reading = await driver.read()
                identity = await _identity(driver)
        except TimeoutError:
            raise ProbeFailed(tr("probe.too_slow", where=where, seconds=self.max_probe_s), "transport") from None
        except DriverError as exc:
            raise _failure(where, exc, transport.type != "tcp") from None
        finally:
            if shared is None:
                await bus.close()
        if reading.invalid or reading.state is None:
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(driver.last_invalid.items()))
            raise ProbeFailed(tr("probe.nonsense", where=where, profile=profile.name,
                                 reasons=reasons or tr("probe.no_state")), "profile")
        latency = bus.stats(transport.unit).last_latency_s
        return ProbeReport(reading, identity, latency * 1000.0 if latency is not None else None)

    def _shared_bus(self, key: str) -> ModbusBus | None:
        if self.pool is None:
            return None
        return next((bus for bus in self.pool.buses if bus.endpoint.key == key), None)


async def _identity(driver: ModbusCharger) -> ChargerIdentity | None:
    """Serial and firmware where the profile has them; a device that will not say is still a good follower."""
    try:
        return await driver.read_identity()
    except (UnsupportedOperation, DeviceRejected):
        return None


_PLAIN_TCP_ADVICE: dict[type[DriverError], str] = {
    GatewayPathError: msgid("probe.advice.wrong_unit"),
}
_SERIAL_ADVICE: dict[type[DriverError], str] = {
    DeviceTimeout: msgid("probe.advice.serial_timeout"),
}
"""A device on an RS-485 line: the wire, baud rate and parity are suspects; a plain Modbus TCP device has none of
them, and an "answered, but not for this unit" from it is no serial device server's doing."""


def _failure(where: str, exc: DriverError, serial: bool) -> ProbeFailed:
    for kind, field, advice in _ADVICE:
        if isinstance(exc, kind):
            advice = (_SERIAL_ADVICE if serial else _PLAIN_TCP_ADVICE).get(kind, advice)
            return ProbeFailed(tr("probe.failed_with_advice", where=where, advice=tr(advice), error=str(exc)), field)
    return ProbeFailed(tr("probe.failed", where=where, error=str(exc)), "transport")
