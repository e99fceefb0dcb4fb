"""The charging profiles a simulated OCPP charger holds, and the limit they put on each connector (OCPP 1.6 §3.13).

Enough of the smart-charging rules for a charger the gateway leads to behave like a real one: profiles replace one
another by id or by (connector, purpose, stack level); the highest stack level whose schedule is running wins
within a purpose; a TxProfile replaces the TxDefaultProfile for its transaction; a connector's own TxDefault hides
the charge point's (connector 0) one at the same stack level; a ChargePointMaxProfile caps every connector; no
profile at all means no limit. Schedules with several periods, a duration, validFrom/validTo, Absolute and Relative
kinds are followed; Recurring profiles are accepted and treated as Absolute (the simulator runs for hours, not
days). Pure: times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NOMINAL_VOLTAGE_V = 230.0
MAX_STACK_LEVEL = 8
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")


def _time(value: Any) -> float | None:
    """An optional ISO 8601 time as UNIX seconds (a time without a zone is UTC); ``ValueError`` if malformed."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Installed:
    connector_id: int
    profile: Mapping[str, Any]
    """snake_case, as the ocpp library hands it to a handler (numbers may be ``Decimal``)."""

    @property
    def purpose(self) -> str:
        return str(self.profile["charging_profile_purpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stack_level"])


class ProfileStore:
    """Installed profiles of one simulated charge point."""

    def __init__(self, connectors: int, phases: int) -> None:
        self.connectors = connectors
        self.phases = phases
        self.installed: list[Installed] = []

    def refusal(self, connector_id: int, profile: Mapping[str, Any], transaction_id: int | None) -> str | None:
        """Why a SetChargingProfile must be ``Rejected`` (None: accept)."""
        purpose = profile.get("charging_profile_purpose")
        if not 0 <= connector_id <= self.connectors:
            return "unknown connector"
        if purpose not in PURPOSES:
            return "unknown purpose"
        if not 0 <= int(profile.get("stack_level", -1)) <= MAX_STACK_LEVEL:
            return "stack level out of range"
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "ChargePointMaxProfile only on connector 0"
        if purpose == "TxProfile":
            if connector_id == 0 or transaction_id is None:
                return "TxProfile without a transaction"
            wanted = profile.get("transaction_id")
            if wanted is not None and int(wanted) != transaction_id:
                return "TxProfile for another transaction"
        schedule = profile.get("charging_schedule", {})
        periods = schedule.get("charging_schedule_period", [])
        if not periods or int(periods[0].get("start_period", -1)) != 0:
            return "first period must start at 0"
        try:
            for value in (profile.get("valid_from"), profile.get("valid_to"), schedule.get("start_schedule")):
                _time(value)
        except ValueError:
            return "malformed date-time"
        return None

    def install(self, connector_id: int, profile: Mapping[str, Any]) -> None:
        new = Installed(connector_id, profile)
        self.installed = [p for p in self.installed if not (
            p.profile["charging_profile_id"] == profile["charging_profile_id"]
            or (p.connector_id == connector_id and p.purpose == new.purpose and p.stack_level == new.stack_level))]
        self.installed.append(new)

    def clear(self, fields: Mapping[str, Any]) -> bool:
        """ClearChargingProfile (§5.5); True if anything was cleared."""
        def matches(p: Installed) -> bool:
            if fields.get("id") is not None:
                return bool(p.profile["charging_profile_id"] == fields["id"])
            return ((fields.get("connector_id") is None or p.connector_id == fields["connector_id"])
                    and (fields.get("charging_profile_purpose") is None
                         or p.purpose == fields["charging_profile_purpose"])
                    and (fields.get("stack_level") is None or p.stack_level == fields["stack_level"]))
        kept = [p for p in self.installed if not matches(p)]
        cleared = len(kept) != len(self.installed)
        self.installed = kept
        return cleared

    def end_transaction(self, connector_id: int) -> None:
        self.installed = [p for p in self.installed
                          if not (p.connector_id == connector_id and p.purpose == "TxProfile")]

    def limit_a(self, connector_id: int, wall: float, tx_elapsed_s: float | None) -> float:
        """The current per phase the connector may offer now (``math.inf``: no profile limits it)."""
        tx_level = None
        if tx_elapsed_s is not None:
            tx_level = self._prevailing([p for p in self.installed if p.connector_id == connector_id
                                         and p.purpose == "TxProfile"], wall, tx_elapsed_s)
        if tx_level is None:
            defaults = [p for p in self.installed if p.purpose == "TxDefaultProfile" and p.connector_id in (
                0, connector_id)]
            own_levels = {p.stack_level for p in defaults if p.connector_id == connector_id}
            defaults = [p for p in defaults if p.connector_id == connector_id or p.stack_level not in own_levels]
            tx_level = self._prevailing(defaults, wall, tx_elapsed_s or 0.0)
        cap = self._prevailing([p for p in self.installed if p.purpose == "ChargePointMaxProfile"], wall, 0.0)
        return min(tx_level if tx_level is not None else math.inf, cap if cap is not None else math.inf)

    def _prevailing(self, candidates: list[Installed], wall: float, relative_s: float) -> float | None:
        for item in sorted(candidates, key=lambda p: -p.stack_level):
            value = self._value(item.profile, wall, relative_s)
            if value is not None:
                return value
        return None

    def _value(self, profile: Mapping[str, Any], wall: float, relative_s: float) -> float | None:
        valid_from, valid_to = _time(profile.get("valid_from")), _time(profile.get("valid_to"))
        if (valid_from is not None and wall < valid_from) or (valid_to is not None and wall >= valid_to):
            return None
        schedule = profile["charging_schedule"]
        if profile.get("charging_profile_kind") == "Relative":
            elapsed = relative_s
        else:
            start = _time(schedule.get("start_schedule")) or valid_from or wall
            elapsed = wall - start
        duration = schedule.get("duration")
        if elapsed < 0 or (duration is not None and elapsed >= float(duration)):
            return None
        periods = sorted(schedule["charging_schedule_period"], key=lambda p: float(p["start_period"]))
        current = [p for p in periods if float(p["start_period"]) <= elapsed][-1]
        limit = float(current["limit"])
        if schedule.get("charging_rate_unit") == "W":
            limit /= NOMINAL_VOLTAGE_V * self.phases
        return limit
