"""What StatusNotification says about each connector, derived from the read model: a pure mapping.

The gateway knows more than the pilot state: whether it gives the car current at all (a car in rotation or on a
disabled site gets 0 A), whether the charger answers, whether a transaction runs. Spec §4.9 and §7.7 (with errata
§3.19-3.22) fix the vocabulary; this module decides which word applies, in this order:

1. a charger the gateway cannot reach is ``Faulted`` (``InternalError``: the link from the charge point to one of
   its connectors failed), with the reason in ``info``; a charger reporting pilot state E or F is ``Faulted`` too;
2. a connector made Inoperative by ChangeAvailability is ``Unavailable`` once no transaction runs on it;
3. a stopped transaction whose car is still plugged in is ``Finishing``;
4. during a transaction: ``SuspendedEVSE`` when the gateway offers no current (0 A, the car waiting for its turn,
   sharing disabled), which wins over ``SuspendedEV`` (car connected but not drawing, or unplugged while the
   transaction is kept), else ``Charging``;
5. without a transaction: ``Preparing`` while a car is plugged in or a remote start waits for one, else
   ``Available``.

Connector 0 (the whole site) is only ever ``Available`` or ``Unavailable`` (errata §3.22).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from drivers.model import Iec61851State
from gateway.runtime.read_model import Availability, UnitStatus

INFO_LENGTH = 50
"""StatusNotification.info is a CiString50."""


class ChargePointStatus(StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ErrorCode(StrEnum):
    NO_ERROR = "NoError"
    INTERNAL_ERROR = "InternalError"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    OTHER_ERROR = "OtherError"


class Activity(StrEnum):
    """What the OCPP side of a connector is doing, from its session."""

    IDLE = "idle"
    PREPARING = "preparing"
    """A remote start waits for a car, or a plugged-in car waits to be authorised."""
    TRANSACTION = "transaction"
    FINISHING = "finishing"


@dataclass(frozen=True, slots=True)
class ConnectorReport:
    status: ChargePointStatus
    error_code: ErrorCode = ErrorCode.NO_ERROR
    info: str | None = None
    vendor_error_code: str | None = None

    def payload(self, connector_id: int, timestamp: str) -> dict[str, Any]:
        """StatusNotification.req."""
        out: dict[str, Any] = {"connectorId": connector_id, "errorCode": self.error_code.value,
                               "status": self.status.value, "timestamp": timestamp}
        if self.info is not None:
            out["info"] = self.info[:INFO_LENGTH]
        if self.vendor_error_code is not None:
            out["vendorErrorCode"] = self.vendor_error_code
        return out


def connector_report(unit: UnitStatus | None, activity: Activity, *, inoperative: bool) -> ConnectorReport:
    """The status of one connector (1..N). ``unit`` is None when the charger left the site's read model;
    ``inoperative``: ChangeAvailability(Inoperative) is in force (requested, and no transaction runs)."""
    if unit is None:
        return ConnectorReport(ChargePointStatus.UNAVAILABLE, info="charger not on the site any more")
    if unit.availability is Availability.UNAVAILABLE:
        reason = unit.unavailable_reason or "unreachable"
        return ConnectorReport(ChargePointStatus.FAULTED, ErrorCode.INTERNAL_ERROR, info=f"charger {reason}")
    vendor = str(unit.error_code) if unit.error_code else None
    if unit.state is Iec61851State.E:
        return ConnectorReport(ChargePointStatus.FAULTED, ErrorCode.EV_COMMUNICATION_ERROR,
                               info="pilot state E", vendor_error_code=vendor)
    if unit.state is Iec61851State.F:
        return ConnectorReport(ChargePointStatus.FAULTED, ErrorCode.OTHER_ERROR, info="charger fault (state F)",
                               vendor_error_code=vendor)
    if inoperative:
        return ConnectorReport(ChargePointStatus.UNAVAILABLE)
    plugged = unit.state is not None and unit.state.plugged_in
    if activity is Activity.FINISHING:
        return ConnectorReport(ChargePointStatus.FINISHING)
    if activity is Activity.TRANSACTION:
        if not plugged:
            return ConnectorReport(ChargePointStatus.SUSPENDED_EV)
        if unit.waiting or unit.setpoint_a <= 0 or unit.availability is Availability.DISABLED:
            return ConnectorReport(ChargePointStatus.SUSPENDED_EVSE)
        if unit.state is not None and unit.state.charging:
            return ConnectorReport(ChargePointStatus.CHARGING)
        return ConnectorReport(ChargePointStatus.SUSPENDED_EV)
    if plugged or activity is Activity.PREPARING:
        return ConnectorReport(ChargePointStatus.PREPARING)
    return ConnectorReport(ChargePointStatus.AVAILABLE)


def site_report(*, inoperative: bool) -> ConnectorReport:
    """Connector 0: the charge point as a whole."""
    return ConnectorReport(ChargePointStatus.UNAVAILABLE if inoperative else ChargePointStatus.AVAILABLE)
