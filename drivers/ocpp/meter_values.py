"""A MeterValues.req's ``meterValue`` list read into the quantities a charger reading needs (OCPP 1.6 §7.31-7.33).

Only what the power-sharing controller can trust is taken: current per phase (``Current.Import`` with phase L1, L2
or L3, or no phase at all, which then counts on every wired phase), the offered current, active power, the energy
register and voltages. Values measured at the car (location ``EV``) or inside the housing (``Body``) are not the
charger's supply current and are skipped, as are signed values (their ``value`` is not a number). A value that is
not a number, or comes in a unit that makes no sense for its measurand, is listed in ``invalid`` rather than
guessed at: a misread current is how a breaker trips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ENERGY = "Energy.Active.Import.Register"
CURRENT = "Current.Import"
OFFERED = "Current.Offered"
POWER = "Power.Active.Import"
VOLTAGE = "Voltage"
SAMPLED_MEASURANDS = (CURRENT, OFFERED, ENERGY, POWER)
"""What the gateway asks a follower to sample (MeterValuesSampledData); Current.Import is the one it needs."""

_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_SCALE = {
    CURRENT: {"A": 1.0},
    OFFERED: {"A": 1.0},
    POWER: {"W": 1.0, "kW": 1000.0},
    ENERGY: {"Wh": 1.0, "kWh": 1000.0},
    VOLTAGE: {"V": 1.0},
}
_DEFAULT_UNIT = {CURRENT: "A", OFFERED: "A", POWER: "W", ENERGY: "Wh", VOLTAGE: "V"}
_SKIPPED_LOCATIONS = frozenset({"EV", "Body"})


class MeterValuesError(ValueError):
    """The structure of ``meterValue`` is wrong (the message as a whole is refused)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """What one MeterValues.req (its latest ``meterValue`` entry per measurand) says."""

    timestamp: float
    """UNIX seconds of the newest ``meterValue`` entry, as the charger stamped it."""
    current_a: tuple[float | None, float | None, float | None] = (None, None, None)
    current_unphased_a: float | None = None
    """A Current.Import without a phase: the charger's current on each of its phases."""
    offered_a: float | None = None
    power_w: float | None = None
    energy_wh: float | None = None
    voltage_v: tuple[float | None, float | None, float | None] = (None, None, None)
    invalid: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_current(self) -> bool:
        return self.current_unphased_a is not None or any(v is not None for v in self.current_a)


def parse_time(value: object) -> float:
    """ISO 8601 to UNIX seconds; a time without a zone is read as UTC (§3.14). ``ValueError`` if not a date-time."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def format_time(t: float) -> str:
    """UNIX seconds to a zone-qualified ISO 8601 time with milliseconds, e.g. ``2024-01-01T10:00:00.000Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_meter_values(meter_value: Sequence[Mapping[str, Any]]) -> Sample:
    """Read the ``meter_value`` list (snake_case or camelCase keys). Raises ``MeterValuesError`` if it is empty or
    an entry has no valid timestamp; bad individual values only land in ``invalid``."""
    if not meter_value:
        raise MeterValuesError("meterValue is empty")
    entries: list[tuple[float, Iterable[Mapping[str, Any]]]] = []
    for entry in meter_value:
        try:
            stamp = parse_time(entry.get("timestamp"))
        except ValueError as exc:
            raise MeterValuesError(f"meterValue timestamp: {exc}") from None
        values = entry.get("sampled_value", entry.get("sampledValue"))
        if not isinstance(values, list):
            raise MeterValuesError("meterValue entry without a sampledValue list")
        entries.append((stamp, values))
    entries.sort(key=lambda item: item[0])
    found: dict[tuple[str, int | None], float] = {}
    invalid: list[str] = []
    for _, values in entries:  # oldest first: a newer entry overwrites an older value
        for sampled in values:
            _take(sampled, found, invalid)
    return _sample(entries[-1][0], found, invalid)


def _take(sampled: Mapping[str, Any], found: dict[tuple[str, int | None], float], invalid: list[str]) -> None:
    measurand = sampled.get("measurand", ENERGY)
    if measurand not in _SCALE or sampled.get("format", "Raw") != "Raw":
        return
    if sampled.get("location", "Outlet") in _SKIPPED_LOCATIONS:
        return
    phase = sampled.get("phase")
    name = f"{measurand}.{phase}" if phase else str(measurand)
    if phase is not None and phase not in _PHASE_INDEX:
        return  # N (neutral) or a line-to-line voltage: not a phase the gateway books
    unit = sampled.get("unit", _DEFAULT_UNIT[measurand])
    scale = _SCALE[measurand].get(unit)
    try:
        value = float(sampled["value"])
    except (KeyError, TypeError, ValueError):
        invalid.append(name)
        return
    if scale is None or not math.isfinite(value) or value < 0:
        invalid.append(name)
        return
    found[(measurand, _PHASE_INDEX[phase] if phase is not None else None)] = value * scale


def _sample(stamp: float, found: Mapping[tuple[str, int | None], float], invalid: list[str]) -> Sample:
    def per_phase(measurand: str) -> tuple[float | None, float | None, float | None]:
        return (found.get((measurand, 0)), found.get((measurand, 1)), found.get((measurand, 2)))

    power = found.get((POWER, None))
    if power is None:
        phases = [v for v in per_phase(POWER) if v is not None]
        power = sum(phases) if phases else None
    return Sample(timestamp=stamp, current_a=per_phase(CURRENT), current_unphased_a=found.get((CURRENT, None)),
                  offered_a=found.get((OFFERED, None)), power_w=power, energy_wh=found.get((ENERGY, None)),
                  voltage_v=per_phase(VOLTAGE), invalid=tuple(dict.fromkeys(invalid)))
