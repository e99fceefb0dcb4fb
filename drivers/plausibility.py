"""What a charger may claim: the one rule every driver applies to its readings before the gateway sees them.

A device that reports 6553.5 A (a register's "not available" pattern read as a number), a negative current or NaN
is not believed: the value becomes ``None`` and its name goes into ``reading.invalid``, exactly like a value the
codec could not decode, so the gateway treats it as a reading it does not have (and books the charger safely)
rather than as a measurement. The bound is the charger's nameplate current times ``TOLERANCE``: a car may draw a
little over what it is offered, and meters are not exact, but never a quarter more than the charger can give.
"""

from __future__ import annotations

import math
from dataclasses import replace

from drivers.model import ChargerReading

TOLERANCE = 1.25
"""How far above its nameplate a charger's reported current may go before it is refused as a bad reading."""
PHASE_NAMES = ("current_l1", "current_l2", "current_l3")
"""The names a refused phase current gets in ``reading.invalid`` (the Modbus point names)."""


def current_refusal(value: float, nameplate_a: float) -> str | None:
    """Why ``value`` (amps on one phase) cannot be a real current of a charger of ``nameplate_a``, or None."""
    if not math.isfinite(value):
        return "not a number"
    if value < 0:
        return f"{value:g} A is negative"
    if value > nameplate_a * TOLERANCE:
        return f"{value:g} A is above {TOLERANCE:g} x the nameplate {nameplate_a:g} A"
    return None


def bounded(reading: ChargerReading, nameplate_a: float) -> tuple[ChargerReading, dict[str, str]]:
    """``reading`` with every implausible phase current refused, and why each was (empty if none was)."""
    refused: dict[str, str] = {}
    currents = list(reading.current_a)
    for i, value in enumerate(currents):
        if value is None:
            continue
        reason = current_refusal(value, nameplate_a)
        if reason is not None:
            refused[PHASE_NAMES[i]] = reason
            currents[i] = None
    if not refused:
        return reading, refused
    invalid = tuple(sorted({*reading.invalid, *refused}))
    return replace(reading, current_a=(currents[0], currents[1], currents[2]), invalid=invalid), refused
