"""The misbehaviours a simulated device can be switched into at run time, one unit at a time.

Each one is something real chargers do on site, and each has one documented outcome in the driver:

=============  ====================================================  ============================================
fault          what the simulated unit does                          what the driver reports
=============  ====================================================  ============================================
``silent``     never answers (powered off, wrong unit id)            ``DeviceTimeout``
``late``       answers, but only after ``late_s`` (busy firmware)    ``DeviceTimeout``; the late answer is never
                                                                     taken for a later request's
``exception``  answers every request with Modbus exception ``code``  ``DeviceRejected`` (1-4), ``DeviceBusy``
                                                                     (5, 6), ``GatewayPathError`` (10, 11)
``garbage``    answers reads with nonsense: NaN, values outside the  the points listed in ``reading.invalid`` and
               point's valid range, unknown enum values              left as ``None``
``drop``       TCP: closes the connection on the next request;       ``ConnectionLost`` (then a reconnect)
               RTU has no connection, so it behaves like ``silent``
=============  ====================================================  ============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

EXCEPTION_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 10, 11})
"""The Modbus exception codes a device can send (9 is not defined)."""


class FaultKind(StrEnum):
    NONE = "none"
    SILENT = "silent"
    LATE = "late"
    EXCEPTION = "exception"
    GARBAGE = "garbage"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind = FaultKind.NONE
    exception_code: int = 4
    late_s: float = 1.0

    def __post_init__(self) -> None:
        if self.exception_code not in EXCEPTION_CODES:
            raise ValueError(f"exception code {self.exception_code} is not a Modbus exception code")
        if self.late_s <= 0:
            raise ValueError("late_s must be > 0")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``silent``, ``late:0.5``, ``exception:6``, ``garbage``, ``drop`` or ``none`` (the CLI syntax)."""
        name, _, arg = text.partition(":")
        try:
            kind = FaultKind(name.strip().lower())
        except ValueError:
            raise ValueError(f"unknown fault {name!r}; one of {', '.join(k.value for k in FaultKind)}") from None
        if kind is FaultKind.LATE and arg:
            return cls(kind, late_s=float(arg))
        if kind is FaultKind.EXCEPTION and arg:
            return cls(kind, exception_code=int(arg))
        if arg:
            raise ValueError(f"fault {kind.value} takes no argument")
        return cls(kind)


NO_FAULT = Fault()
