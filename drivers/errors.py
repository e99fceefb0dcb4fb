"""The one error tree of the drivers library.

Callers decide what to do by class, never by message: a ``TransientError`` means "this unit is unreachable right
now, book it at what it may still draw and try again", a ``PermanentError`` means "a person must fix the
configuration or the profile; retrying will not help". pymodbus, serial and socket exceptions are translated into
this tree at the bus boundary and never escape the library.

    DriverError
    ├── TransientError
    │   ├── DeviceTimeout          no answer within the timeout
    │   ├── ConnectionLost         socket closed, serial port gone, connect refused
    │   ├── DeviceBusy             Modbus exception 5/6: acknowledged or busy, try later
    │   └── GatewayPathError       Modbus exception 10/11 from an RTU-over-TCP server in between
    └── PermanentError
        ├── ProfileError           the profile file is invalid
        ├── UnsupportedOperation   the profile does not declare the point needed
        ├── DeviceRejected         Modbus exception 1/2/3/4: the device refuses what the profile says it accepts
        └── RequestRefused         an OCPP device answered Rejected/NotSupported or a CALLERROR
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error the drivers library raises."""


class TransientError(DriverError):
    """The device may answer next time; the gateway books it as unreachable meanwhile."""


class DeviceTimeout(TransientError):
    """No (complete) answer within the configured timeout."""


class ConnectionLost(TransientError):
    """The transport is down: refused, reset, or the serial device disappeared."""


class DeviceBusy(TransientError):
    """The device answered with Modbus exception 5 (acknowledge) or 6 (busy)."""


class GatewayPathError(TransientError):
    """An RTU-over-TCP gateway answered exception 10/11: the unit behind it did not answer."""


class PermanentError(DriverError):
    """Retrying will not help: a profile, configuration or device model mismatch."""


class ProfileError(PermanentError):
    """A profile file is malformed or inconsistent; the message names the file and key."""


class UnsupportedOperation(PermanentError):
    """The profile does not declare the point this operation needs."""


class DeviceRejected(PermanentError):
    """The device answered a request with Modbus exception 1 to 4."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class RequestRefused(PermanentError):
    """An OCPP charge point refused a call: a status other than Accepted, or a CALLERROR (``answer`` says which)."""

    def __init__(self, message: str, answer: str) -> None:
        super().__init__(message)
        self.answer = answer
