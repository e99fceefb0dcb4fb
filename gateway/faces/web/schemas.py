"""The JSON the API speaks, as pydantic models: they validate requests and document responses at ``/docs``.

Responses are built from the read model (``gateway.runtime.read_model.SiteStatus``) and nothing else, so the page shows
exactly what the BMS registers and OCPP messages say. Request bodies carry only shapes and types; whether a value
is allowed (a limit above the installation limit, an unknown unit) is the commissioning rules' call
(``GatewayControl.apply``), which is the same call the site file and the BMS face go through.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from drivers.model import Iec61851State
from drivers.profile import ChargerProfile
from gateway.core.limits import LimitSource
from gateway.runtime.follower_probe import ProbeReport
from gateway.runtime.history.recorder import Point, Session
from gateway.runtime.read_model import Availability, Event, GatewayHealth, SiteStatus, UnitStatus
from gateway.site.config import ChargerConfig

Phases = Annotated[list[float], Field(min_length=3, max_length=3)]
"""L1, L2, L3 (a list rather than a tuple: plain ``items`` in the schema suits every OpenAPI tool)."""

STATE_TEXT = {
    Iec61851State.A: "no car",
    Iec61851State.B: "car connected",
    Iec61851State.C: "charging",
    Iec61851State.D: "charging (ventilation)",
    Iec61851State.E: "error: no power or pilot short",
    Iec61851State.F: "fault",
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ----------------------------------------------------------------------------------------------------
class LimitIn(Body):
    limit_a: float = Field(strict=True, allow_inf_nan=False, description="amperes per phase (a JSON number)")
    confirm_zero: bool = Field(default=False, description="must be true to set 0 A, which stops charging: an "
                                                          "empty or mistyped field must never do that by accident")


class SessionNeedIn(Body):
    departure: AwareDatetime | None = Field(default=None, description="when the car leaves, with its time zone")
    energy_kwh: float | None = Field(default=None, allow_inf_nan=False, description="energy wanted this session")


class EnabledIn(Body):
    enabled: bool


class PasswordIn(Body):
    password: str = Field(max_length=256)


class SetupIn(Body):
    setup_code: str = Field(max_length=64, description="the one-time code the gateway logged at start")
    password: str = Field(min_length=8, max_length=256, description="the new installer password")


class PasswordChangeIn(Body):
    current_password: str = Field(max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


# -- responses ---------------------------------------------------------------------------------------------------
class Refusal(BaseModel):
    """Why a request was refused; nothing was changed."""

    detail: str
    field: str | None = Field(default=None, description="the request field at fault, where there is one")


class LinkOut(BaseModel):
    success_rate: float = Field(description="fraction of recent exchanges that succeeded, 0..1")
    latency_ms: float | None
    last_seen_s: float | None = Field(description="UNIX time of the last successful exchange")


class UnitOut(BaseModel):
    id: str
    index: int
    state: Iec61851State | None = Field(description="IEC 61851 pilot state A..F; null when unknown")
    state_text: str
    availability: Literal["available", "unavailable", "disabled"]
    unavailable_reason: str | None
    setpoint_a: float
    current_a: Phases = Field(description="measured, on site phases L1..L3")
    power_w: float
    session_energy_wh: float
    energy_wh: float | None
    limit_a: float
    max_current_a: float
    waiting: bool
    error_code: int
    link: LinkOut
    answering: bool = Field(description="false: the unit does not answer, current_a is unknown (shown as 0) and "
                                        "booked_a is what the controller counts for it")
    booked_a: Phases = Field(description="what the controller counts for this unit per site phase")
    departure_s: float | None = Field(default=None, description="when the present (or next) session's car leaves, "
                                                                "as set by the API or the BMS (UNIX seconds)")
    energy_wanted_kwh: float | None = Field(default=None, description="energy the session wants, as set by the API "
                                                                      "or the BMS")


class LimitOut(BaseModel):
    effective_limit_a: Phases = Field(description="per phase, after every source is applied")
    source: Literal["installation", "network", "bms_fallback", "ocpp", "site_meter", "bms"]
    installation_limit_a: float
    network_limit_a: float
    bms_watchdog_s: float
    bms_fallback_limit_a: float


class StatusOut(BaseModel):
    name: str
    time_s: float
    enabled: bool
    health: Literal["ok", "degraded", "fault"]
    limit: LimitOut
    measured_a: Phases
    allocated_a: Phases
    drawn_a: Phases = Field(description="measured current of the units that answer plus the booked current of "
                                        "those that do not (a silent unit's car may still charge)")
    invariant_violations: int = Field(
        description="control rounds since start whose own commands broke the safety invariant; above 0 is a defect")
    booked_excess_a: float = Field(
        description="worst amount by which bookings exceed a node limit on a phase now (briefly after a limit drop)")
    power_w: float
    online: int
    charging: int
    units: list[UnitOut]


class EventOut(BaseModel):
    time_s: float
    kind: str
    text: str
    origin: str | None


MaybePhases = Annotated[list[float | None], Field(min_length=3, max_length=3)]
"""L1, L2, L3 where a value may be unknown (null)."""


class HistoryPoint(BaseModel):
    time_s: float = Field(description="the start of the step (UNIX seconds); the live range: the moment")
    drawn_a: MaybePhases = Field(description="mean current drawn over the step, as StatusOut.drawn_a: silent "
                                             "units counted at their booked current")
    drawn_max_a: MaybePhases = Field(description="the highest current drawn in the step")
    limit_a: MaybePhases = Field(description="the lowest limit in force in the step")


class SessionRecord(BaseModel):
    unit: str
    start_s: float = Field(description="plugged in (UNIX seconds)")
    end_s: float | None = Field(description="left (UNIX seconds); null while the car is still there")
    energy_kwh: float
    id_tag: str | None = Field(description="as the unit reported it (OCPP followers); null where none is known")


class SessionsOut(BaseModel):
    total: int = Field(description="sessions that match, on every page")
    offset: int
    limit: int
    sessions: list[SessionRecord] = Field(description="newest first")


class ProfileOut(BaseModel):
    name: str
    manufacturer: str
    models: list[str]
    transports: list[str]
    default_unit_id: int
    nameplate_a: float
    trust: str
    notes: str


class IdentityOut(BaseModel):
    serial: str | None
    firmware: str | None
    model: str | None


class ProbeOut(BaseModel):
    state: Iec61851State | None
    state_text: str
    current_a: list[float | None] = Field(min_length=3, max_length=3, description="on the charger's own L1..L3")
    setpoint_a: float | None
    latency_ms: float | None
    identity: IdentityOut | None


class AddedOut(BaseModel):
    follower: ChargerConfig
    probe: ProbeOut


class AuthOut(BaseModel):
    password_set: bool
    signed_in: bool
    read_access: Literal["open", "password"]
    csrf_token: str | None = Field(description="for X-CSRF-Token on writes made with the session cookie")


class SessionOut(BaseModel):
    token: str = Field(description="also usable as 'Authorization: Bearer <token>' (no CSRF header needed)")
    csrf_token: str


class LanguageOut(BaseModel):
    code: str = Field(description="a language code, as in GET /api/i18n/{lang}: en, de")
    name: str = Field(description="the language's own name: English, Deutsch")


class LanguagesOut(BaseModel):
    lang: str = Field(description="the language this client gets: its powershare_lang cookie (set by the page's "
                                  "language switch), else its Accept-Language, else en")
    languages: list[LanguageOut]


class CatalogOut(BaseModel):
    lang: str
    messages: dict[str, str] = Field(description="the page's texts by message id (page.*), with {placeholders}; "
                                                 "English where a text is not translated")


_AVAILABILITY: dict[Availability, Literal["available", "unavailable", "disabled"]] = {
    Availability.AVAILABLE: "available", Availability.UNAVAILABLE: "unavailable", Availability.DISABLED: "disabled"}
_SOURCE: dict[LimitSource, Literal["installation", "network", "bms_fallback", "ocpp", "site_meter", "bms"]] = {
    LimitSource.INSTALLATION: "installation", LimitSource.NETWORK: "network",
    LimitSource.BMS_FALLBACK: "bms_fallback", LimitSource.OCPP: "ocpp", LimitSource.SITE_METER: "site_meter",
    LimitSource.BMS: "bms"}
_HEALTH: dict[GatewayHealth, Literal["ok", "degraded", "fault"]] = {
    GatewayHealth.OK: "ok", GatewayHealth.DEGRADED: "degraded", GatewayHealth.FAULT: "fault"}


def _amps(values: tuple[float, ...]) -> list[float]:
    """To the hundredth of an ampere, as every meter reads: 13.333333333333334 costs 18 bytes a value, and a
    status of 250 units goes out every second to every open page."""
    return [round(v, 2) for v in values]


def state_text(state: Iec61851State | None) -> str:
    return STATE_TEXT[state] if state is not None else "unknown"


def unit_out(unit: UnitStatus) -> UnitOut:
    link = unit.link
    return UnitOut(
        id=unit.id, index=unit.index, state=unit.state,
        state_text=state_text(unit.state) if unit.answering else "not answering",
        availability=_AVAILABILITY[unit.availability], unavailable_reason=unit.unavailable_reason,
        setpoint_a=round(unit.setpoint_a, 2), current_a=_amps(unit.current_a), power_w=round(unit.power_w, 1),
        session_energy_wh=round(unit.session_energy_wh, 1), energy_wh=unit.energy_wh, limit_a=unit.limit_a,
        max_current_a=unit.max_current_a, waiting=unit.waiting, error_code=unit.error_code,
        answering=unit.answering, booked_a=_amps(unit.booked_a), departure_s=unit.departure_s,
        energy_wanted_kwh=unit.energy_wanted_kwh,
        link=LinkOut(success_rate=round(link.success_rate, 3),
                     latency_ms=round(link.latency_ms, 1) if link.latency_ms is not None else None,
                     last_seen_s=link.last_seen_s))


def limit_out(status: SiteStatus) -> LimitOut:
    return LimitOut(effective_limit_a=list(status.effective_limit_a), source=_SOURCE[status.limit_source],
                    installation_limit_a=status.installation_limit_a, network_limit_a=status.network_limit_a,
                    bms_watchdog_s=status.bms_watchdog_s, bms_fallback_limit_a=status.bms_fallback_limit_a)


def status_out(status: SiteStatus, name: str) -> StatusOut:
    return StatusOut(name=name, time_s=status.time_s, enabled=status.enabled,
                     health=_HEALTH[status.health], limit=limit_out(status),
                     measured_a=_amps(status.measured_a), allocated_a=_amps(status.allocated_a),
                     drawn_a=_amps(status.drawn_a), power_w=status.power_w,
                     invariant_violations=status.invariant_violations, booked_excess_a=status.booked_excess_a,
                     online=status.online, charging=status.charging, units=[unit_out(u) for u in status.units])


def event_out(event: Event) -> EventOut:
    return EventOut(time_s=event.time_s, kind=event.kind, text=event.text, origin=event.origin)


def history_point(point: Point) -> HistoryPoint:
    return HistoryPoint(time_s=point.time_s, drawn_a=_known(point.mean_a), drawn_max_a=_known(point.max_a),
                        limit_a=_known(point.limit_a))


def session_record(session: Session) -> SessionRecord:
    return SessionRecord(unit=session.unit, start_s=session.start_s, end_s=session.end_s,
                         energy_kwh=round(session.energy_wh / 1000, 3), id_tag=session.id_tag)


def _known(values: tuple[float, ...]) -> list[float | None]:
    """To the hundredth of an ampere; unknown (NaN: not finite when recorded) as null."""
    return [round(v, 2) if math.isfinite(v) else None for v in values]


def profile_out(profile: ChargerProfile) -> ProfileOut:
    return ProfileOut(name=profile.name, manufacturer=profile.manufacturer, models=list(profile.models),
                      transports=[t.value for t in profile.transports], default_unit_id=profile.default_unit_id,
                      nameplate_a=profile.nameplate_a, trust=profile.trust.value, notes=profile.notes)


def probe_out(report: ProbeReport) -> ProbeOut:
    identity = report.identity
    return ProbeOut(state=report.reading.state, state_text=state_text(report.reading.state),
                    current_a=list(report.reading.current_a),
                    setpoint_a=report.reading.setpoint_a, latency_ms=report.latency_ms,
                    identity=IdentityOut(serial=identity.serial, firmware=identity.firmware, model=identity.model)
                    if identity is not None else None)
