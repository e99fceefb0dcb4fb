"""Read-model snapshots of one unit, for the pure OCPP tests."""

from __future__ import annotations

from typing import Any

from drivers.model import Iec61851State
from gateway.runtime.read_model import Availability, LinkQuality, UnitStatus


def unit(state: str | None = "A", **changes: Any) -> UnitStatus:
    """A reachable unit in pilot ``state`` (None: no reading), with ``changes`` on top."""
    values: dict[str, Any] = dict(
        id="cp1", index=0, state=None if state is None else Iec61851State(state),
        availability=Availability.AVAILABLE, unavailable_reason=None, setpoint_a=16.0,
        current_a=(0.0, 0.0, 0.0), power_w=0.0, session_energy_wh=0.0, energy_wh=1000.0, limit_a=32.0,
        max_current_a=32.0, waiting=False, link=LinkQuality(1.0, 5.0, 0.0))
    values.update(changes)
    return UnitStatus(**values)
