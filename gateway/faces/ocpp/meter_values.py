"""MeterValues from the read model: which sampled values a measurand list gives, and when samples are due.

Per-phase values are on the *connector's* phases L1..L3 (spec §9.1.6: the charge point reports what its own meter
sees; ``ConnectorPhaseRotation`` tells the central system where they land). The read model holds currents on site
phases, so each connector phase is looked up through the charger's wiring. A 1-phase charger has only L1.

* ``Current.Import``: one value per wired phase; ``Current.Import.L2``: that phase (0 A if not wired).
* ``Current.Offered``: the setpoint the charger acknowledged, per phase (one value, no phase, unless asked).
* ``Power.Active.Import``: the charger's power; with a phase, its share by that phase's current.
* ``Power.Offered``: setpoint x nominal voltage x wired phases.
* ``Energy.Active.Import.Register``: the transaction's meter (the charger's register, or the session's energy).

Sampled values are taken every MeterValueSampleInterval from the start of the transaction; clock-aligned ones at
every multiple of ClockAlignedDataInterval counted from midnight UTC, stamped with that instant (spec §3.16).
Values are instantaneous readings at the sample time. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.faces.ocpp.measurands import ENERGY
from gateway.faces.ocpp.payload import format_time
from gateway.runtime.read_model import UnitStatus

DAY_S = 86_400


class Context(StrEnum):
    PERIODIC = "Sample.Periodic"
    CLOCK = "Sample.Clock"
    TRIGGER = "Trigger"
    TRANSACTION_END = "Transaction.End"


@dataclass(frozen=True, slots=True)
class Wiring:
    site_phases: tuple[int, ...]
    """Site phase (0..2) of the charger's L1, L2, L3; one entry for a 1-phase charger."""
    voltage_v: float


def _number(value: float) -> str:
    """At most one decimal, never an exponent."""
    return format(round(value, 1), "f").rstrip("0").rstrip(".")


def _split(measurand: str) -> tuple[str, int | None]:
    for k, name in enumerate(("L1", "L2", "L3")):
        if measurand.endswith("." + name):
            return measurand[: -len(name) - 1], k
    return measurand, None


def meter_value(unit: UnitStatus, measurands: Sequence[str], wiring: Wiring, context: Context, t: float,
                energy_wh: float | None) -> dict[str, Any] | None:
    """One MeterValue (``timestamp`` and ``sampledValue``), or None if no measurand has a value."""
    wired = range(len(wiring.site_phases))
    current = [unit.current_a[wiring.site_phases[k]] if k in wired else 0.0 for k in range(3)]
    offered = [unit.setpoint_a if k in wired else 0.0 for k in range(3)]
    values: list[dict[str, Any]] = []

    def add(measurand: str, value: float, unit_name: str, phase: int | None = None) -> None:
        item: dict[str, Any] = {"value": _number(value), "context": context.value, "measurand": measurand,
                                "location": "Outlet", "unit": unit_name}
        if phase is not None:
            item["phase"] = f"L{phase + 1}"
        values.append(item)

    for name in measurands:
        base, phase = _split(name)
        if base == ENERGY:
            if energy_wh is not None:
                add(base, energy_wh, "Wh")
        elif base == "Current.Import":
            for k in wired if phase is None else (phase,):
                add(base, current[k], "A", k)
        elif base == "Current.Offered":
            if phase is None:
                add(base, unit.setpoint_a, "A")
            else:
                add(base, offered[phase], "A", phase)
        elif base == "Power.Active.Import":
            total = sum(current)
            share = 1.0 if phase is None else (current[phase] / total if total > 0 else 0.0)
            add(base, unit.power_w * share, "W", phase)
        elif base == "Power.Offered":
            add(base, unit.setpoint_a * wiring.voltage_v * len(wiring.site_phases), "W")
    if not values:
        return None
    return {"timestamp": format_time(t), "sampledValue": values}


def next_aligned(t: float, interval_s: int) -> float:
    """The first clock-aligned instant after ``t``: a multiple of ``interval_s`` from midnight UTC (a day that the
    interval does not divide ends early, at the next midnight)."""
    midnight = math.floor(t / DAY_S) * DAY_S
    k = math.floor((t - midnight) / interval_s) + 1
    return float(min(midnight + k * interval_s, midnight + DAY_S))


def next_sample(started_s: float, t: float, interval_s: int) -> float:
    """The first sample instant after ``t`` of a transaction that started at ``started_s``."""
    k = math.floor((t - started_s) / interval_s) + 1
    return started_s + max(1, k) * interval_s
