"""OCPP 1.6 connector statuses (§7.7) and error codes (§7.6) in the IEC 61851 vocabulary the gateway uses.

A connector counts as plugged in (B or C) only while the charger can deliver energy to a car: during a transaction,
or in a status that says a car is being served (Charging, SuspendedEV, SuspendedEVSE). ``Preparing`` (a car is
plugged in but nobody has authorised yet) and ``Finishing`` (the transaction has ended, the cable is still in)
read as A when no transaction runs: the charger will not deliver energy then, so the controller gives that current
to the others, and a new transaction starts a fresh session (what the controller learnt about the previous car is
forgotten).
"""

from __future__ import annotations

from drivers.model import Iec61851State

ACTIVE_STATUSES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
"""Statuses in which the charger serves a car: its meter values must keep coming."""

_STATE = {
    "Available": Iec61851State.A,
    "Reserved": Iec61851State.A,
    "Preparing": Iec61851State.B,
    "Finishing": Iec61851State.B,
    "Charging": Iec61851State.C,
    "SuspendedEV": Iec61851State.B,
    "SuspendedEVSE": Iec61851State.B,
    "Unavailable": Iec61851State.F,
    "Faulted": Iec61851State.F,
}

ERROR_CODES = (
    "NoError", "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal",
)
"""ChargePointErrorCode in the order of the specification; the index is the number the read model shows."""


def iec_state(status: str, in_transaction: bool) -> Iec61851State:
    """The IEC 61851 state of a connector in ``status``; ``KeyError`` for a status OCPP 1.6 does not define."""
    state = _STATE[status]
    if state is Iec61851State.B and status in ("Preparing", "Finishing") and not in_transaction:
        return Iec61851State.A
    return state


def error_number(code: str) -> int:
    """0 for NoError, 1.. for the others in specification order (7 = OtherError for a code not in 1.6)."""
    return ERROR_CODES.index(code) if code in ERROR_CODES else ERROR_CODES.index("OtherError")
