"""The small protocols the gateway programs against; every transport (Modbus, OCPP, simulator) implements them.

They are deliberately narrow: the controller needs to read a charger and set its current, and to make it fall back
safely if the gateway dies. Everything else (identity, unlocking) is an optional ability checked with
``isinstance`` against its own protocol, so a driver for a simple device is small.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from drivers.model import ChargerCapabilities, ChargerIdentity, ChargerReading, MeterReading


@runtime_checkable
class ChargerDriver(Protocol):
    """One charger. Methods raise ``drivers.errors.DriverError`` subclasses only."""

    @property
    def capabilities(self) -> ChargerCapabilities: ...

    async def read(self) -> ChargerReading:
        """Poll the device once (batched reads as the profile allows)."""
        ...

    async def write_setpoint(self, current_a: float) -> None:
        """Command the current limit; 0 pauses charging. Returns once the device acknowledged the write."""
        ...

    async def keep_alive(self) -> None:
        """Do whatever keeps the device's communication watchdog from expiring (may be a no-op)."""
        ...

    async def configure_failsafe(self, current_a: float, timeout_s: float) -> None:
        """Program the current the device falls back to after ``timeout_s`` without the gateway."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class IdentityReader(Protocol):
    async def read_identity(self) -> ChargerIdentity: ...


@runtime_checkable
class MeterDriver(Protocol):
    async def read(self) -> MeterReading: ...

    async def close(self) -> None: ...
