"""OCPP 1.6 smart charging as pure state and arithmetic: which profiles are installed, and what they allow now.

``ProfileStore`` answers SetChargingProfile and ClearChargingProfile exactly as the spec and its errata say, keeps
track of the transactions TxProfiles belong to, and serialises itself for the gateway to persist atomically
(profiles survive reboots, errata §3.37). ``limits_at`` gives the limit in force at an instant for the site and
for each connector, in amps per phase; ``next_change`` says when that can next change on its own; ``composite``
answers GetCompositeSchedule. Nothing here reads a clock or does I/O.

How purposes combine (spec §3.13.2-3, errata §3.8 and §3.43):

* within a purpose the valid profile with the highest stack level whose schedule is running wins; if its
  schedule is not running (before its start, after its duration, between recurrences) the next level shows;
* a TxProfile replaces the TxDefaultProfile for its transaction (not a minimum of the two);
* a connector-specific TxDefaultProfile hides a connector-0 one at the same stack level for that connector;
* a connector's limit is the minimum of that and the ChargePointMaxProfile, which is also the site's limit.

W to A (errata §3.69, §3.34): ``amps per phase = watts / (nominal voltage x phases)``, where *phases* is the
number the circuit really has: the site supply's for a ChargePointMaxProfile, the charger's wiring for a
connector. A W period's ``numberPhases`` does not divide it: the gateway cannot force a 3-phase charger onto one
phase, so ``W / 230`` on every phase could triple the power the central system asked for; dividing by the real
phase count keeps the total at or below the W limit whatever phases the car uses, and equals the spec's formula
whenever numberPhases matches the wiring. A limits are per phase and used as given.

A to W (a composite schedule asked in W): a period's ``numberPhases`` (absent: 3) says on how many phases its
current flows, capped at the wiring, so 16 A on one phase is 3,680 W even on a 3-phase charger. Where several
limits meet, the least current and the fewest phases among them bind.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gateway.errors import StateError
from gateway.faces.ocpp.charging_profile import (
    DAY_S,
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    SchedulePeriod,
    active_period,
    change_times,
    check_schedule,
    end_of_life,
    parse_profile,
)
from gateway.faces.ocpp.payload import CallErrorCode, Fields, PayloadError, format_time, tenths
from gateway.site.config import NameplateLookup, SiteConfig, nameplate_a, unit_limit_a

MAX_COMPOSITE_S = 31 * DAY_S
"""GetCompositeSchedule durations are capped here; the answer says the duration it covers."""
NEXT_CHANGE_HORIZON_S = 8 * DAY_S
"""``next_change`` looks this far ahead: past a Weekly recurrence, so a recurring change is always found."""


@dataclass(frozen=True, slots=True)
class ProfileRules:
    """The read-only smart-charging configuration keys (spec §9.4) and the number of connectors."""

    number_of_connectors: int
    max_stack_level: int = 8
    max_periods: int = 24
    allowed_units: frozenset[RateUnit] = frozenset({RateUnit.A, RateUnit.W})
    max_profiles: int = 32


@dataclass(frozen=True, slots=True)
class ConnectorRating:
    phases: int
    """Phases wired to the charger (1 or 3): divides a W limit."""
    max_a: float
    """Most the charger may draw per phase; a composite schedule reports this where no profile limits it."""


@dataclass(frozen=True, slots=True)
class Electrical:
    """What turns watts into amps and what "no constraint" means in a composite schedule."""

    voltage_v: float
    """Nominal phase-to-neutral voltage of the area (230 or 120), not a measured one (errata §3.69)."""
    site_phases: int
    site_max_a: float
    connectors: tuple[ConnectorRating, ...]
    """Connector 1 is ``connectors[0]``."""

    @classmethod
    def from_site(cls, site: SiteConfig, nameplate_of: NameplateLookup) -> Electrical:
        ratings = []
        for charger in site.chargers:
            nameplate = nameplate_a(charger, nameplate_of)
            ratings.append(ConnectorRating(charger.phases, min(unit_limit_a(charger, nameplate), nameplate)))
        return cls(site.supply.voltage_v, site.supply.phases, site.installation_limit_a, tuple(ratings))

    def amps(self, limit: float, unit: RateUnit, phases: int) -> float:
        return limit if unit is RateUnit.A else limit / (self.voltage_v * phases)

    def phases_of(self, connector_id: int) -> int:
        return self.site_phases if connector_id == 0 else self.connectors[connector_id - 1].phases


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    connector_id: int
    profile: ChargingProfile


@dataclass(frozen=True, slots=True)
class Transaction:
    start: float
    """Anchors Relative schedules."""
    transaction_id: int | None
    """None until StartTransaction.conf gives it (a transaction started offline)."""


class SetStatus(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


@dataclass(frozen=True, slots=True)
class SetOutcome:
    status: SetStatus
    reason: str | None = None
    """Why it was rejected, for the log (SetChargingProfile.conf has no field for it)."""
    replaced: tuple[int, ...] = ()
    """Ids of the profiles the new one replaced."""


class ClearStatus(StrEnum):
    ACCEPTED = "Accepted"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class ClearOutcome:
    status: ClearStatus
    cleared: tuple[int, ...] = ()


class StoreFormatError(StateError):
    """The persisted profile store cannot be read."""


class ProfileStore:
    """The installed charging profiles and the transactions TxProfiles belong to.

    Every method either changes the state completely or not at all; after a change the gateway persists
    ``to_json()`` atomically.
    """

    def __init__(self, rules: ProfileRules, profiles: Iterable[InstalledProfile] = (),
                 transactions: Mapping[int, Transaction] | None = None) -> None:
        self.rules = rules
        self._profiles = tuple(profiles)
        self._transactions = dict(transactions or {})

    @property
    def profiles(self) -> tuple[InstalledProfile, ...]:
        return self._profiles

    @property
    def transactions(self) -> Mapping[int, Transaction]:
        return dict(self._transactions)

    # --- SetChargingProfile ------------------------------------------------------------------------------------

    def set_charging_profile(self, connector_id: int, profile: ChargingProfile, now: float) -> SetOutcome:
        """Install ``profile`` on ``connector_id`` if the rules allow it, replacing what it supersedes.

        A connector that does not exist raises ``PayloadError`` (errata §3.38: a CALLERROR
        PropertyConstraintViolation, not ``Rejected``); every other refusal is ``Rejected`` with a reason.
        An existing profile is replaced when it has the same id, or the same stack level and purpose on the same
        connector (spec §5.16.3, per connector as libocpp does).
        """
        self._check_connector(connector_id)
        reason = self._refusal(connector_id, profile, now)
        if reason is not None:
            return SetOutcome(SetStatus.REJECTED, reason)
        return self._install(connector_id, _anchored(profile, now), enforce_capacity=True)

    def _check_connector(self, connector_id: int) -> None:
        if not 0 <= connector_id <= self.rules.number_of_connectors:
            raise PayloadError(CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                               f"connectorId {connector_id} does not exist (0..{self.rules.number_of_connectors})")

    def _refusal(self, connector_id: int, profile: ChargingProfile, now: float) -> str | None:
        purpose = profile.purpose
        if purpose is Purpose.CHARGE_POINT_MAX and connector_id != 0:
            return "a ChargePointMaxProfile limits the whole charge point: it goes on connectorId 0"
        if purpose is Purpose.CHARGE_POINT_MAX and profile.kind is Kind.RELATIVE:
            return "a ChargePointMaxProfile cannot be Relative: connector 0 has no transaction to start from"
        if purpose is Purpose.TX and connector_id == 0:
            return "a TxProfile belongs to one connector's transaction: connectorId 0 is not allowed"
        reason = self._schedule_refusal(profile)
        if reason is not None:
            return reason
        if profile.valid_to is not None and profile.valid_to <= now:
            return f"validTo {format_time(profile.valid_to)} is already past"
        if purpose is Purpose.TX:
            tx = self._transactions.get(connector_id)
            if tx is None:
                return f"no transaction is active on connector {connector_id}"
            if profile.transaction_id is not None and profile.transaction_id != tx.transaction_id:
                active = "not known yet" if tx.transaction_id is None else str(tx.transaction_id)
                return (f"transactionId {profile.transaction_id} is not the transaction on connector "
                        f"{connector_id} ({active})")
        return None

    def _schedule_refusal(self, profile: ChargingProfile) -> str | None:
        return check_schedule(profile, max_periods=self.rules.max_periods, allowed_units=self.rules.allowed_units,
                              max_stack_level=self.rules.max_stack_level)

    def _install(self, connector_id: int, profile: ChargingProfile, *, enforce_capacity: bool) -> SetOutcome:
        kept = []
        replaced = []
        for item in self._profiles:
            old = item.profile
            same_slot = (item.connector_id == connector_id and old.stack_level == profile.stack_level
                         and old.purpose is profile.purpose)
            if old.id == profile.id or same_slot:
                replaced.append(old.id)
            else:
                kept.append(item)
        if enforce_capacity and len(kept) >= self.rules.max_profiles:
            return SetOutcome(SetStatus.REJECTED, f"{self.rules.max_profiles} profiles are installed already "
                              "(MaxChargingProfilesInstalled)")
        self._profiles = (*kept, InstalledProfile(connector_id, profile))
        return SetOutcome(SetStatus.ACCEPTED, replaced=tuple(replaced))

    # --- ClearChargingProfile ----------------------------------------------------------------------------------

    def clear_charging_profile(self, *, profile_id: int | None = None, connector_id: int | None = None,
                               purpose: Purpose | None = None, stack_level: int | None = None) -> ClearOutcome:
        """Remove matching profiles (spec §5.5, errata §3.25-26).

        With ``profile_id`` only that profile is cleared and the other filters are ignored; otherwise every
        profile matching all the given filters is. ``connector_id`` means where a profile was installed: 0 clears
        connector-0 profiles (ChargePointMax and charge-point-wide TxDefault), not a connector's share of them.
        ``Unknown`` when nothing matched, including a clear-all on an empty store.
        """
        def matches(item: InstalledProfile) -> bool:
            if profile_id is not None:
                return item.profile.id == profile_id
            return ((connector_id is None or item.connector_id == connector_id)
                    and (purpose is None or item.profile.purpose is purpose)
                    and (stack_level is None or item.profile.stack_level == stack_level))

        cleared = tuple(item.profile.id for item in self._profiles if matches(item))
        if not cleared:
            return ClearOutcome(ClearStatus.UNKNOWN)
        self._profiles = tuple(item for item in self._profiles if not matches(item))
        return ClearOutcome(ClearStatus.ACCEPTED, cleared)

    # --- Transactions ------------------------------------------------------------------------------------------

    def remote_start_refusal(self, connector_id: int, profile: ChargingProfile) -> str | None:
        """Why RemoteStartTransaction with this profile must be ``Rejected``, or None (spec §5.11, errata
        §3.41-42; OCTT TC_060): it must be a TxProfile without a transactionId, on a real connector."""
        if not 1 <= connector_id <= self.rules.number_of_connectors:
            return f"connector {connector_id} does not exist (1..{self.rules.number_of_connectors})"
        if profile.purpose is not Purpose.TX:
            return f"a RemoteStartTransaction profile must be a TxProfile, not {profile.purpose.value}"
        if profile.transaction_id is not None:
            return "a RemoteStartTransaction profile cannot name a transactionId: the transaction does not exist yet"
        return self._schedule_refusal(profile)

    def start_transaction(self, connector_id: int, start: float, transaction_id: int | None = None,
                          tx_profile: ChargingProfile | None = None) -> None:
        """A transaction began on the connector; ``tx_profile`` is the one RemoteStartTransaction carried
        (checked before with ``remote_start_refusal``). A transaction still recorded there is ended first."""
        self._check_connector(connector_id)
        if connector_id == 0:
            raise PayloadError(CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "connector 0 has no transactions")
        self.end_transaction(connector_id)
        self._transactions[connector_id] = Transaction(start, transaction_id)
        if tx_profile is not None:
            self._install(connector_id, tx_profile, enforce_capacity=False)

    def assign_transaction_id(self, connector_id: int, transaction_id: int) -> None:
        """StartTransaction.conf arrived with the central system's id for the connector's transaction."""
        tx = self._transactions.get(connector_id)
        if tx is not None:
            self._transactions[connector_id] = replace(tx, transaction_id=transaction_id)

    def end_transaction(self, connector_id: int) -> tuple[int, ...]:
        """The connector's transaction ended: its TxProfiles cease to be valid (spec §7.10). Returns their ids."""
        self._transactions.pop(connector_id, None)
        ended = tuple(item.profile.id for item in self._profiles
                      if item.connector_id == connector_id and item.profile.purpose is Purpose.TX)
        if ended:
            self._profiles = tuple(item for item in self._profiles
                                   if not (item.connector_id == connector_id and item.profile.purpose is Purpose.TX))
        return ended

    def expire(self, now: float) -> tuple[int, ...]:
        """Drop profiles that can never be active again (past validTo, or an Absolute schedule that has ended),
        so they stop counting against MaxChargingProfilesInstalled. Returns their ids."""
        gone = tuple(item.profile.id for item in self._profiles if end_of_life(item.profile) <= now)
        if gone:
            self._profiles = tuple(item for item in self._profiles if end_of_life(item.profile) > now)
        return gone

    # --- Persistence -------------------------------------------------------------------------------------------

    def to_json(self) -> str:
        data = {
            "version": 1,
            "profiles": [{"connectorId": item.connector_id, "profile": item.profile.to_payload()}
                         for item in self._profiles],
            "transactions": [{"connectorId": c, "start": format_time(tx.start), "transactionId": tx.transaction_id}
                             for c, tx in sorted(self._transactions.items())],
        }
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str, rules: ProfileRules) -> ProfileStore:
        """Read what ``to_json`` wrote. Entries for connectors beyond ``rules.number_of_connectors`` (a charger
        was removed from the site) are left out; anything unreadable raises ``StoreFormatError``."""
        try:
            data = json.loads(text)
            top = Fields(data, "store")
            if top.integer("version", required=True) != 1:
                raise StoreFormatError("unsupported profile store version")
            profiles = []
            for entry in top.objects("profiles"):
                connector_id = entry.integer("connectorId", required=True)
                profile = parse_profile(entry.raw("profile", required=True), f"{entry.where}.profile")
                entry.done()
                assert connector_id is not None
                if 0 <= connector_id <= rules.number_of_connectors:
                    profiles.append(InstalledProfile(connector_id, profile))
            transactions = {}
            for entry in top.objects("transactions"):
                connector_id = entry.integer("connectorId", required=True)
                start = entry.time("start", required=True)
                tx_id = entry.integer("transactionId")
                entry.done()
                assert connector_id is not None and start is not None
                if 1 <= connector_id <= rules.number_of_connectors:
                    transactions[connector_id] = Transaction(start, tx_id)
            top.done()
        except (ValueError, PayloadError) as exc:
            raise StoreFormatError(f"profile store: {exc}") from None
        return cls(rules, profiles, transactions)


def _anchored(profile: ChargingProfile, now: float) -> ChargingProfile:
    """An Absolute profile without startSchedule starts at validFrom, or when it was received [interp: the spec
    makes startSchedule optional; libocpp refuses such a profile]. Stored resolved, so a restart keeps it."""
    if profile.kind is Kind.ABSOLUTE and profile.schedule.start is None:
        start = profile.valid_from if profile.valid_from is not None else float(math.floor(now))
        return replace(profile, schedule=replace(profile.schedule, start=start))
    return profile


# --- Evaluation ---------------------------------------------------------------------------------------------------

def _by_stack(items: Iterable[tuple[int, ChargingProfile]]) -> list[ChargingProfile]:
    """Highest stack level first; at equal level a connector's own profile (rank 0) before a connector-0 one."""
    return [p for _, p in sorted(items, key=lambda rp: (-rp[1].stack_level, rp[0]))]


@dataclass(frozen=True, slots=True)
class _Candidates:
    """A connector's profiles per purpose, in the order they are tried."""

    tx: list[ChargingProfile]
    tx_default: list[ChargingProfile]
    anchor: float | None


@dataclass(slots=True)
class _View:
    """The store arranged for evaluation at many instants."""

    electrical: Electrical
    cp_max: list[ChargingProfile]
    connectors: list[_Candidates] = field(default_factory=list)

    @classmethod
    def of(cls, store: ProfileStore, electrical: Electrical, idle_anchor: float | None) -> _View:
        """``idle_anchor``: where a Relative TxDefault starts on a connector without a transaction (None: at
        each instant evaluated, "as if a transaction started now")."""
        if len(electrical.connectors) != store.rules.number_of_connectors:
            raise ValueError(f"{len(electrical.connectors)} connector ratings for "
                             f"{store.rules.number_of_connectors} connectors")
        cp_max = _by_stack((0, item.profile) for item in store.profiles
                           if item.profile.purpose is Purpose.CHARGE_POINT_MAX)
        view = cls(electrical, cp_max)
        txs = store.transactions
        for n in range(1, store.rules.number_of_connectors + 1):
            tx = txs.get(n)
            own = [item.profile for item in store.profiles if item.connector_id == n]
            tx_profiles = [] if tx is None else _by_stack(
                (0, p) for p in own
                if p.purpose is Purpose.TX and p.transaction_id in (None, tx.transaction_id))
            defaults = _by_stack(
                (0 if item.connector_id == n else 1, item.profile) for item in store.profiles
                if item.profile.purpose is Purpose.TX_DEFAULT and item.connector_id in (0, n))
            view.connectors.append(_Candidates(tx_profiles, defaults, tx.start if tx else idle_anchor))
        return view

    def profiles(self, connector_id: int) -> list[tuple[ChargingProfile, float | None]]:
        """Every profile that bears on ``connector_id`` (all of them for 0), with its Relative anchor."""
        out: list[tuple[ChargingProfile, float | None]] = [(p, None) for p in self.cp_max]
        for n, c in enumerate(self.connectors, start=1):
            if connector_id in (0, n):
                out.extend((p, c.anchor) for p in (*c.tx, *c.tx_default))
        return out

    def site_a(self, t: float) -> float | None:
        found = self.site(t)
        return None if found is None else found.amps

    def site(self, t: float) -> _Limit | None:
        return _winner(self.cp_max, t, None, self.electrical, self.electrical.site_phases)

    def tx_level_a(self, connector_id: int, t: float) -> float | None:
        """TxProfile if one is running, else TxDefaultProfile (errata §3.8), in A per phase."""
        found = self.tx_level(connector_id, t)
        return None if found is None else found.amps

    def tx_level(self, connector_id: int, t: float) -> _Limit | None:
        c = self.connectors[connector_id - 1]
        phases = self.electrical.phases_of(connector_id)
        found = _winner(c.tx, t, c.anchor, self.electrical, phases)
        return found if found is not None else _winner(c.tx_default, t, c.anchor, self.electrical, phases)


@dataclass(frozen=True, slots=True)
class _Limit:
    """A limit in force: amps per phase, and on how many phases that current may flow."""

    amps: float
    phases: int

    def watts(self, voltage_v: float) -> float:
        return self.amps * voltage_v * self.phases


def _binding(*limits: _Limit | None) -> _Limit:
    """Where limits meet: the least current, on the fewest phases any of them allows."""
    known = [limit for limit in limits if limit is not None]
    return _Limit(min(x.amps for x in known), min(x.phases for x in known))


def _winner(stack: Sequence[ChargingProfile], t: float, anchor: float | None, electrical: Electrical,
            wired: int) -> _Limit | None:
    for profile in stack:
        period = active_period(profile, t, anchor)
        if period is not None:
            if profile.schedule.unit is RateUnit.W:
                return _Limit(electrical.amps(period.limit, RateUnit.W, wired), wired)
            return _Limit(period.limit, min(wired, 3 if period.phases is None else period.phases))
    return None


def _min_known(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


@dataclass(frozen=True, slots=True)
class LimitsInForce:
    """What the installed profiles allow at one instant, in A per phase; None means no OCPP constraint."""

    site_a: float | None
    """The ChargePointMaxProfile: all connectors together."""
    connectors_a: tuple[float | None, ...]
    """Per connector (``connectors_a[0]`` is connector 1): min(site, TxProfile or else TxDefaultProfile)."""


def limits_at(store: ProfileStore, electrical: Electrical, t: float) -> LimitsInForce:
    """The limits in force at ``t``.

    A TxDefaultProfile applies to a connector whether or not it has a transaction [interp: libocpp and MicroOcpp
    apply it only during one; applying it always is the safe side for chargers the gateway lets charge without
    an OCPP transaction]; a Relative one without a transaction reads its first period.
    """
    view = _View.of(store, electrical, idle_anchor=None)
    return _limits(view, t)


def _limits(view: _View, t: float) -> LimitsInForce:
    site = view.site_a(t)
    per_connector = tuple(_min_known(site, view.tx_level_a(n, t)) for n in range(1, len(view.connectors) + 1))
    return LimitsInForce(site, per_connector)


def next_change(store: ProfileStore, electrical: Electrical, now: float,
                horizon_s: float = NEXT_CHANGE_HORIZON_S) -> float | None:
    """The first instant after ``now`` at which ``limits_at`` differs from its value at ``now``.

    Limits are constant on ``[now, result)``. When nothing changes within ``horizon_s`` the answer is
    ``now + horizon_s`` ("ask again then"), or None if no profile is installed at all. Installing, clearing,
    and transactions starting or ending change limits too: evaluate again after those.
    """
    if not store.profiles:
        return None
    view = _View.of(store, electrical, idle_anchor=None)
    current = _limits(view, now)
    until = now + horizon_s
    times = sorted({t for profile, anchor in view.profiles(0) for t in change_times(profile, now, until, anchor)})
    for t in times:
        if _limits(view, t) != current:
            return t
    return until


# --- GetCompositeSchedule -----------------------------------------------------------------------------------------

class CompositeStatus(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    status: CompositeStatus
    connector_id: int
    start: float | None = None
    """``scheduleStart``: the request time, floored to a whole second."""
    duration_s: int | None = None
    unit: RateUnit | None = None
    periods: tuple[SchedulePeriod, ...] = ()
    """Contiguous from 0, adjacent equal limits merged, limits floored to 0.1."""
    reason: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """GetCompositeSchedule.conf (camelCase, floats only: no Decimal, errata §3.57: no startSchedule)."""
        out: dict[str, Any] = {"status": self.status.value, "connectorId": self.connector_id}
        if self.status is CompositeStatus.ACCEPTED:
            assert self.start is not None and self.unit is not None
            out["scheduleStart"] = format_time(self.start)
            out["chargingSchedule"] = {
                "duration": self.duration_s,
                "chargingRateUnit": self.unit.value,
                "chargingSchedulePeriod": [{"startPeriod": p.start_s, "limit": p.limit} for p in self.periods],
            }
        return out


def parse_get_composite_schedule(payload: Mapping[str, Any]) -> tuple[int, int, RateUnit | None]:
    """GetCompositeSchedule.req -> (connectorId, duration, chargingRateUnit); raises ``PayloadError``."""
    f = Fields(payload, "GetCompositeSchedule")
    connector_id = f.integer("connectorId", required=True)
    duration = f.integer("duration", required=True)
    unit = f.enum("chargingRateUnit", RateUnit)
    f.done()
    assert connector_id is not None and duration is not None
    return connector_id, duration, unit


def composite(store: ProfileStore, electrical: Electrical, connector_id: int, now: float, duration_s: int,
              unit: RateUnit | None = None) -> CompositeSchedule:
    """GetCompositeSchedule (spec §5.7, errata §3.28-30): the expected limit from ``now`` for ``duration_s``.

    * connector n: min(ChargePointMax, TxProfile or else TxDefault, the connector's rating); a connector without
      a transaction shows its TxDefaultProfile as if a transaction started now (OCTT TC_056);
    * connector 0: the sum over connectors of (TxProfile or else TxDefault, capped at each rating), then
      min(ChargePointMax, the site's installation limit): what the site expects to draw from the grid;
    * where no profile limits, the rating is reported ("no constraint" is not 0 A);
    * no unit asked: A, or W when only Power is allowed. A unit not allowed, an unknown connector or a duration
      below 1 s: ``Rejected``. Durations above 31 days are cut to 31 days.
    """
    rules = store.rules
    if not 0 <= connector_id <= rules.number_of_connectors:
        return CompositeSchedule(CompositeStatus.REJECTED, connector_id, reason=f"no connector {connector_id}")
    if duration_s < 1:
        return CompositeSchedule(CompositeStatus.REJECTED, connector_id, reason="duration must be at least 1 s")
    if unit is None:
        unit = RateUnit.A if RateUnit.A in rules.allowed_units else RateUnit.W
    if unit not in rules.allowed_units:
        return CompositeSchedule(CompositeStatus.REJECTED, connector_id,
                                 reason=f"unit {unit.value} is not allowed (ChargingScheduleAllowedChargingRateUnit)")
    duration_s = min(duration_s, MAX_COMPOSITE_S)
    start = float(math.floor(now))
    view = _View.of(store, electrical, idle_anchor=start)
    until = start + duration_s
    times = sorted({start} | {t for profile, anchor in view.profiles(connector_id)
                              for t in change_times(profile, start, until, anchor)})
    values = [_composite_value(view, connector_id, t, unit) for t in times]

    # Per whole second (startPeriod is an integer): the least value seen within that second, never a higher one.
    per_second: dict[int, float] = defaultdict(lambda: math.inf)
    previous = values[0]
    for t, value in zip(times, values, strict=True):
        second = math.floor(t - start)
        if t - start != second:
            per_second[second] = min(per_second[second], previous)
        per_second[second] = min(per_second[second], value)
        previous = value
    periods: list[SchedulePeriod] = []
    for second in sorted(per_second):
        limit = tenths(per_second[second])
        if not periods or periods[-1].limit != limit:
            periods.append(SchedulePeriod(second, limit))
    return CompositeSchedule(CompositeStatus.ACCEPTED, connector_id, start, duration_s, unit, tuple(periods))


def _composite_value(view: _View, connector_id: int, t: float, unit: RateUnit) -> float:
    """The composite at ``t`` in ``unit``: A per phase, or W over the phases the binding limits allow."""
    electrical = view.electrical
    voltage = electrical.voltage_v

    def connector(n: int) -> _Limit:
        rating = electrical.connectors[n - 1]
        return _binding(_Limit(rating.max_a, rating.phases), view.tx_level(n, t))

    site = view.site(t)
    if connector_id == 0:
        installation = _Limit(electrical.site_max_a, electrical.site_phases)
        caps = [installation] if site is None else [installation, site]
        if unit is RateUnit.A:
            return min(sum(connector(n).amps for n in range(1, len(electrical.connectors) + 1)),
                       *(cap.amps for cap in caps))
        return min(sum(connector(n).watts(voltage) for n in range(1, len(electrical.connectors) + 1)),
                   *(cap.watts(voltage) for cap in caps))
    own = _binding(connector(connector_id), site)
    return own.amps if unit is RateUnit.A else own.watts(voltage)
