"""Builders for OCPP 1.6 charging-profile payloads and stores, shared by the smart-charging tests."""

from __future__ import annotations

from typing import Any

from drivers.ocpp.meter_values import parse_time
from gateway.faces.ocpp.charging_profile import ChargingProfile, parse_profile
from gateway.faces.ocpp.smart_charging import (
    CompositeSchedule,
    ConnectorRating,
    Electrical,
    ProfileRules,
    ProfileStore,
    SetOutcome,
    SetStatus,
)

CPMAX = "ChargePointMaxProfile"
TXDEF = "TxDefaultProfile"
TX = "TxProfile"


def at(clock: str, day: str = "2024-01-01") -> float:
    """UNIX seconds of ``day`` ``clock`` UTC; 2024-01-01 is a Monday."""
    return parse_time(f"{day}T{clock}Z")


def payload(pid: int, stack: int, purpose: str, periods: Any = ((0, 16),), *, kind: str = "Absolute",
            unit: str = "A", start: str | None = "2024-01-01T00:00:00Z", duration: int | None = None,
            recurrency: str | None = None, **extra: Any) -> dict[str, Any]:
    """A csChargingProfiles payload; ``periods`` are (startPeriod, limit) or (startPeriod, limit, phases)."""
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if len(p) > 2 else {})} for p in periods]}
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = start
    if duration is not None:
        schedule["duration"] = duration
    out: dict[str, Any] = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
                           "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}
    if recurrency is not None:
        out["recurrencyKind"] = recurrency
    return out


def profile(*args: Any, **kwargs: Any) -> ChargingProfile:
    return parse_profile(payload(*args, **kwargs))


def make_store(connectors: int = 2, **rules: Any) -> ProfileStore:
    return ProfileStore(ProfileRules(connectors, **rules))


def electrical(connectors: int = 2, phases: int = 3, max_a: float = 32.0, site_max_a: float = 100.0,
               site_phases: int = 3) -> Electrical:
    return Electrical(230.0, site_phases, site_max_a, tuple(ConnectorRating(phases, max_a) for _ in range(connectors)))


def install(store: ProfileStore, connector_id: int, data: dict[str, Any], now: float) -> SetOutcome:
    """Install and insist it was accepted (the setup of a test, not what it checks)."""
    outcome = store.set_charging_profile(connector_id, parse_profile(data), now)
    assert outcome.status is SetStatus.ACCEPTED, outcome.reason
    return outcome


def periods(schedule: CompositeSchedule) -> list[tuple[int, float]]:
    return [(p.start_s, p.limit) for p in schedule.periods]
