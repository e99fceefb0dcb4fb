"""StatusNotification from the read model: the pure mapping, case by case (spec §4.9, §7.7; errata §3.19-22)."""

from __future__ import annotations

import pytest
from support.ocpp_units import unit

from gateway.faces.ocpp.connector_status import (
    Activity,
    ChargePointStatus,
    ConnectorReport,
    ErrorCode,
    connector_report,
    site_report,
)
from gateway.runtime.read_model import Availability, UnitStatus

S = ChargePointStatus
IDLE, PREP, TX, FIN = Activity.IDLE, Activity.PREPARING, Activity.TRANSACTION, Activity.FINISHING


@pytest.mark.parametrize(("case", "status", "activity", "expected"), [
    ("no car", unit("A"), IDLE, S.AVAILABLE),
    ("car plugged, no transaction yet", unit("B"), IDLE, S.PREPARING),
    ("remote start waiting for a car", unit("A"), PREP, S.PREPARING),
    ("car waiting for authorisation", unit("B"), PREP, S.PREPARING),
    ("charging", unit("C"), TX, S.CHARGING),
    ("charging with ventilation", unit("D"), TX, S.CHARGING),
    ("energy offered, car not taking it", unit("B"), TX, S.SUSPENDED_EV),
    ("the gateway gives the car 0 A (rotation)", unit("B", waiting=True, setpoint_a=0.0), TX, S.SUSPENDED_EVSE),
    ("waiting wins over the car's own pause", unit("C", waiting=True), TX, S.SUSPENDED_EVSE),
    ("setpoint 0 A", unit("C", setpoint_a=0.0), TX, S.SUSPENDED_EVSE),
    ("sharing disabled", unit("B", availability=Availability.DISABLED), TX, S.SUSPENDED_EVSE),
    ("unplugged, transaction kept (StopTransactionOnEVSideDisconnect false)", unit("A"), TX, S.SUSPENDED_EV),
    ("stopped, car still plugged in", unit("B"), FIN, S.FINISHING),
])
def test_status(case: str, status: UnitStatus, activity: Activity, expected: ChargePointStatus) -> None:
    report = connector_report(status, activity, inoperative=False)
    assert report.status is expected, case
    assert report.error_code is ErrorCode.NO_ERROR


def test_an_unreachable_charger_is_faulted_with_the_reason() -> None:
    report = connector_report(unit(None, availability=Availability.UNAVAILABLE, unavailable_reason="timeout"),
                              TX, inoperative=False)
    assert report == ConnectorReport(S.FAULTED, ErrorCode.INTERNAL_ERROR, info="charger timeout")


@pytest.mark.parametrize(("state", "code"), [("E", ErrorCode.EV_COMMUNICATION_ERROR), ("F", ErrorCode.OTHER_ERROR)])
def test_pilot_error_states_are_faulted(state: str, code: ErrorCode) -> None:
    report = connector_report(unit(state, error_code=17), IDLE, inoperative=True)
    assert report.status is S.FAULTED and report.error_code is code and report.vendor_error_code == "17"


def test_inoperative_is_unavailable_but_a_fault_still_shows() -> None:
    assert connector_report(unit("B"), IDLE, inoperative=True).status is S.UNAVAILABLE
    unreachable = unit(None, availability=Availability.UNAVAILABLE)
    assert connector_report(unreachable, IDLE, inoperative=True).status is S.FAULTED


def test_a_charger_gone_from_the_site_is_unavailable() -> None:
    assert connector_report(None, IDLE, inoperative=False).status is S.UNAVAILABLE


def test_connector_0_is_available_or_unavailable() -> None:
    assert site_report(inoperative=False).status is S.AVAILABLE
    assert site_report(inoperative=True).status is S.UNAVAILABLE


def test_payload_cuts_info_to_50_characters() -> None:
    report = ConnectorReport(S.FAULTED, ErrorCode.INTERNAL_ERROR, info="x" * 80, vendor_error_code="3")
    payload = report.payload(2, "2024-01-01T00:00:00Z")
    assert payload == {"connectorId": 2, "errorCode": "InternalError", "status": "Faulted",
                       "timestamp": "2024-01-01T00:00:00Z", "info": "x" * 50, "vendorErrorCode": "3"}
