"""The charging profiles the gateway installs on a follower: one setpoint profile per connector, and a guard.

Both are ``TxDefaultProfile``, kind ``Relative``, one period from 0, no duration and no validity dates, so they hold
for as long as they are installed whatever the charger's clock says. Their ids are in a range of their own, so a
setpoint replaces the previous one by id and never touches a profile someone else installed.
"""

from __future__ import annotations

import math

PROFILE_ID_BASE = 900_000
"""The gateway's charging profile ids are this plus the connector id (0: the guard on connector 0)."""


def setpoint_profile(connector_id: int, stack_level: int, current_a: float) -> dict[str, object]:
    """The ``csChargingProfiles`` carrying a setpoint (snake_case, as the library's call objects take it)."""
    return {
        "charging_profile_id": PROFILE_ID_BASE + connector_id,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {"charging_rate_unit": "A",
                              "charging_schedule_period": [{"start_period": 0, "limit": current_a}]},
    }


def limit_of(current_a: float) -> float:
    """A setpoint as an OCPP limit: at most one decimal (§7.13), rounded down, never up."""
    return math.floor(current_a * 10 + 1e-9) / 10
