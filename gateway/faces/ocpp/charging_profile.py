"""OCPP 1.6 charging profiles as plain values, how to read them from a payload, and what one says at an instant.

Times are UNIX seconds (floats) throughout: the caller passes ``now``, nothing here reads a clock. Limits are
floats that were checked to have at most one decimal on the way in (the ``ocpp`` library delivers them as
``Decimal``, which must never leak back into a response: its validator cannot serialise one).

Recurring schedules repeat every 86 400 s (Daily) or 604 800 s (Weekly) from ``startSchedule``: clock time in
UTC, as spec §3.14 recommends; a site on local time shifts by an hour across daylight-saving changes, exactly as
the spec warns (§3.13.7). A recurring schedule is not active before its ``startSchedule`` (no extrapolation
backwards; libocpp does extrapolate, the spec is silent).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.faces.ocpp.payload import Fields, format_time

DAY_S = 86_400
WEEK_S = 7 * DAY_S


class Purpose(StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(StrEnum):
    """A: current per phase. W: total power (spec §7.12, errata §3.69)."""

    A = "A"
    W = "W"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_s: int
    """Seconds from the start of the schedule; also ends the previous period."""
    limit: float
    """In the schedule's unit: A per phase, or W in total."""
    phases: int | None = None
    """``numberPhases``; absent means 3."""


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    duration_s: int | None = None
    start: float | None = None
    """``startSchedule``: anchors Absolute and Recurring schedules; ignored for Relative ones."""
    min_rate: float | None = None
    """``minChargingRate``: advice for a load balancer, not a floor (spec §3.13.4)."""


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: ChargingSchedule
    recurrency: Recurrency | None = None
    transaction_id: int | None = None
    valid_from: float | None = None
    valid_to: float | None = None

    def to_payload(self) -> dict[str, Any]:
        """The OCPP JSON form (camelCase), as in SetChargingProfile.req's ``csChargingProfiles``."""
        sched = self.schedule
        schedule: dict[str, Any] = {
            "chargingRateUnit": sched.unit.value,
            "chargingSchedulePeriod": [_period_payload(p) for p in sched.periods],
        }
        if sched.duration_s is not None:
            schedule["duration"] = sched.duration_s
        if sched.start is not None:
            schedule["startSchedule"] = format_time(sched.start)
        if sched.min_rate is not None:
            schedule["minChargingRate"] = sched.min_rate
        out: dict[str, Any] = {
            "chargingProfileId": self.id,
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": self.purpose.value,
            "chargingProfileKind": self.kind.value,
            "chargingSchedule": schedule,
        }
        if self.transaction_id is not None:
            out["transactionId"] = self.transaction_id
        if self.recurrency is not None:
            out["recurrencyKind"] = self.recurrency.value
        if self.valid_from is not None:
            out["validFrom"] = format_time(self.valid_from)
        if self.valid_to is not None:
            out["validTo"] = format_time(self.valid_to)
        return out


def _period_payload(period: SchedulePeriod) -> dict[str, Any]:
    out: dict[str, Any] = {"startPeriod": period.start_s, "limit": period.limit}
    if period.phases is not None:
        out["numberPhases"] = period.phases
    return out


def parse_profile(data: object, where: str = "csChargingProfiles") -> ChargingProfile:
    """Read a ChargingProfile from its JSON form (camelCase, or the library's snake_case).

    Raises ``PayloadError`` (a CALLERROR) for anything the message format forbids: a missing required field, a
    wrong type, an unknown enum value or field, a limit with two decimals. Whether the profile may be installed
    (stack level, period order, purpose per connector, ...) is a separate question: ``check_profile``.
    """
    f = Fields(data, where)
    profile_id = f.integer("chargingProfileId", required=True)
    stack_level = f.integer("stackLevel", required=True)
    purpose = f.enum("chargingProfilePurpose", Purpose, required=True)
    kind = f.enum("chargingProfileKind", Kind, required=True)
    recurrency = f.enum("recurrencyKind", Recurrency)
    transaction_id = f.integer("transactionId")
    valid_from = f.time("validFrom")
    valid_to = f.time("validTo")
    s = f.obj("chargingSchedule", required=True)
    f.done()
    assert profile_id is not None and stack_level is not None and purpose is not None and kind is not None
    assert s is not None
    unit = s.enum("chargingRateUnit", RateUnit, required=True)
    duration = s.integer("duration")
    start = s.time("startSchedule")
    min_rate = s.tenth("minChargingRate")
    periods = []
    for p in s.objects("chargingSchedulePeriod", required=True):
        start_s = p.integer("startPeriod", required=True)
        limit = p.tenth("limit", required=True)
        phases = p.integer("numberPhases")
        p.done()
        assert start_s is not None and limit is not None
        periods.append(SchedulePeriod(start_s, limit, phases))
    s.done()
    assert unit is not None
    if kind is not Kind.RECURRING:
        recurrency = None  # errata §3.56: only meaningful for Recurring; a stray one is ignored, not refused
    return ChargingProfile(
        id=profile_id, stack_level=stack_level, purpose=purpose, kind=kind,
        schedule=ChargingSchedule(unit, tuple(periods), duration, start, min_rate),
        recurrency=recurrency, transaction_id=transaction_id, valid_from=valid_from, valid_to=valid_to)


def parse_set_charging_profile(payload: Mapping[str, Any]) -> tuple[int, ChargingProfile]:
    """SetChargingProfile.req -> (connectorId, profile); raises ``PayloadError``."""
    f = Fields(payload, "SetChargingProfile")
    connector_id = f.integer("connectorId", required=True)
    raw = f.raw("csChargingProfiles", required=True)
    f.done()
    assert connector_id is not None
    return connector_id, parse_profile(raw)


def check_schedule(profile: ChargingProfile, *, max_periods: int, allowed_units: frozenset[RateUnit],
                   max_stack_level: int) -> str | None:
    """Why the profile's own content cannot be installed (answered ``Rejected``), or None if it can.

    Covers the rules that do not depend on the charge point's state: stack level range, period count and
    order (errata §3.45: the first period starts at 0), units allowed by ``ChargingScheduleAllowedChargingRate
    Unit``, numberPhases 1..3, no negative limit, and the fields a Recurring profile needs.
    """
    sched = profile.schedule
    if not 0 <= profile.stack_level <= max_stack_level:
        return f"stackLevel {profile.stack_level} is outside 0..{max_stack_level} (ChargeProfileMaxStackLevel)"
    if sched.unit not in allowed_units:
        return f"chargingRateUnit {sched.unit.value} is not allowed (ChargingScheduleAllowedChargingRateUnit)"
    if len(sched.periods) > max_periods:
        return f"{len(sched.periods)} periods is more than {max_periods} (ChargingScheduleMaxPeriods)"
    if sched.periods[0].start_s != 0:
        return f"the first period starts at {sched.periods[0].start_s} s; it must start at 0"
    for before, after in zip(sched.periods, sched.periods[1:], strict=False):
        if after.start_s <= before.start_s:
            return f"startPeriod {after.start_s} does not come after {before.start_s}"
    for period in sched.periods:
        if period.limit < 0:
            return f"limit {period.limit:g} is negative"
        if period.phases is not None and not 1 <= period.phases <= 3:
            return f"numberPhases {period.phases} is not 1, 2 or 3"
    if sched.min_rate is not None and sched.min_rate < 0:
        return f"minChargingRate {sched.min_rate:g} is negative"
    if sched.duration_s is not None and sched.duration_s <= 0:
        return f"duration {sched.duration_s} s is not positive"
    if profile.kind is Kind.RECURRING:
        if profile.recurrency is None:
            return "a Recurring profile needs recurrencyKind"
        if sched.start is None:
            return "a Recurring profile needs startSchedule"
    if profile.valid_from is not None and profile.valid_to is not None and profile.valid_to <= profile.valid_from:
        return "validTo is not after validFrom"
    return None


# --- What a profile says at an instant ------------------------------------------------------------------------

def _recurrence_s(profile: ChargingProfile) -> int:
    return WEEK_S if profile.recurrency is Recurrency.WEEKLY else DAY_S


def _run_length(profile: ChargingProfile) -> float:
    """How long one run of the schedule lasts: its duration, cut at the recurrence length for Recurring."""
    duration = profile.schedule.duration_s
    if profile.kind is Kind.RECURRING:
        return min(duration, _recurrence_s(profile)) if duration is not None else _recurrence_s(profile)
    return duration if duration is not None else math.inf


def _origin(profile: ChargingProfile, t: float, anchor: float | None) -> float | None:
    """Start of the schedule run that covers ``t``, or None if no run has started by ``t``.

    ``anchor`` is where a Relative schedule starts (the transaction start); None means "a transaction starting
    at ``t``", so a Relative schedule without a transaction reads its first period.
    """
    start = profile.schedule.start
    if profile.kind is Kind.RELATIVE:
        return t if anchor is None else anchor
    if start is None or t < start:
        return None
    if profile.kind is Kind.RECURRING:
        every = _recurrence_s(profile)
        return start + math.floor((t - start) / every) * every
    return start


def active_period(profile: ChargingProfile, t: float, anchor: float | None) -> SchedulePeriod | None:
    """The period in force at ``t``, or None if the profile is not valid or its schedule is not running then.

    None lets a lower stack level show through (spec §3.13.2, errata §3.43).
    """
    if profile.valid_from is not None and t < profile.valid_from:
        return None
    if profile.valid_to is not None and t >= profile.valid_to:
        return None
    origin = _origin(profile, t, anchor)
    if origin is None or t < origin:
        return None
    offset = t - origin
    if offset >= _run_length(profile):
        return None
    found = None
    for period in profile.schedule.periods:
        if period.start_s > offset:
            break
        found = period
    return found


def change_times(profile: ChargingProfile, after: float, until: float, anchor: float | None) -> Iterator[float]:
    """Every instant in (after, until) at which ``active_period`` may change (it is constant between them)."""
    edges: list[float] = []
    if profile.valid_from is not None:
        edges.append(profile.valid_from)
    if profile.valid_to is not None:
        edges.append(profile.valid_to)
    run = _run_length(profile)
    starts = [p.start_s for p in profile.schedule.periods if p.start_s < run]
    if profile.kind is Kind.RECURRING:
        start = profile.schedule.start
        assert start is not None
        every = _recurrence_s(profile)
        k = max(0, math.floor((after - start) / every))
        while start + k * every < until:
            origin = start + k * every
            edges.extend(origin + s for s in starts)
            edges.append(origin + run)
            k += 1
    else:
        first = profile.schedule.start if profile.kind is Kind.ABSOLUTE else anchor
        if first is not None:
            edges.extend(first + s for s in starts)
            edges.append(first + run)
    return (e for e in edges if after < e < until)


def end_of_life(profile: ChargingProfile) -> float:
    """The instant after which the profile can never be active again (inf if it may always come back)."""
    end = profile.valid_to if profile.valid_to is not None else math.inf
    if profile.kind is Kind.ABSOLUTE and profile.schedule.start is not None:
        end = min(end, profile.schedule.start + _run_length(profile))
    return end
