"""What a charger or meter reports, in units the rest of the system can trust.

Every quantity carries its unit in its name (``current_a``, ``power_w``, ``energy_wh``) so that a scale error in a
profile shows up as a wrong name at review time, not as a tripped breaker on site. A value a device did not supply,
or supplied as nonsense, is ``None`` here; what was nonsense is listed in ``invalid`` so the gateway can say why a
unit is degraded instead of silently treating 6553.5 A as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

PHASES = 3
"""Chargers and sites have at most three phases; per-phase tuples are always this long."""

PhaseValues = tuple[float | None, float | None, float | None]
"""One value per phase L1, L2, L3 of the device (not of the site: phase rotation is the gateway's business)."""

NO_PHASE_VALUES: PhaseValues = (None, None, None)


class Iec61851State(StrEnum):
    """The control-pilot state of IEC 61851-1, the one vocabulary every charger controller maps onto."""

    A = "A"  # no vehicle connected
    B = "B"  # vehicle connected, not charging
    C = "C"  # charging
    D = "D"  # charging, ventilation required
    E = "E"  # error: pilot shorted / no power
    F = "F"  # charger fault / unavailable

    @property
    def plugged_in(self) -> bool:
        return self in (Iec61851State.B, Iec61851State.C, Iec61851State.D)

    @property
    def charging(self) -> bool:
        return self in (Iec61851State.C, Iec61851State.D)

    @property
    def code(self) -> int:
        """1..6 for A..F: the number the BMS register map and logs use."""
        return "ABCDEF".index(self.value) + 1


@dataclass(frozen=True, slots=True)
class ChargerReading:
    """One poll of one charger. Per-phase values are on the charger's own L1..L3."""

    state: Iec61851State | None = None
    current_a: PhaseValues = NO_PHASE_VALUES
    voltage_v: PhaseValues = NO_PHASE_VALUES
    power_w: float | None = None
    energy_wh: float | None = None
    """Lifetime (or since power-on, if that is all the device has) energy register."""
    session_energy_wh: float | None = None
    setpoint_a: float | None = None
    """The current limit the device reports it is applying, where it can be read back."""
    enabled: bool | None = None
    error_code: int | None = None
    invalid: tuple[str, ...] = ()
    """Names of points whose raw value made no sense (out of range, NaN, unknown enum value)."""
    id_tag: str | None = None
    """Who the running session is for, where the charger knows (an OCPP follower's StartTransaction idTag)."""

    @property
    def max_phase_current_a(self) -> float | None:
        known = [c for c in self.current_a if c is not None]
        return max(known) if known else None


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One poll of a site or sub-circuit meter, per phase of the meter."""

    current_a: PhaseValues = NO_PHASE_VALUES
    voltage_v: PhaseValues = NO_PHASE_VALUES
    power_w: float | None = None
    energy_import_wh: float | None = None
    invalid: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChargerIdentity:
    """What the installer checks on site to know the right box is on the right address."""

    serial: str | None = None
    firmware: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class ChargerCapabilities:
    """What a charger can do, from its profile (and, where the device reports it, from the device)."""

    max_current_a: float
    """Nameplate maximum per phase."""
    min_current_a: float = 6.0
    """The lowest non-zero current it accepts (IEC 61851: 6 A)."""
    resolution_a: float = 1.0
    """Smallest setpoint step; changes smaller than this are not worth a command."""
    phases: int = 3
    has_failsafe: bool = False
    """True if the device falls back to a programmable current when the gateway stops talking to it."""
    can_disable: bool = False
    can_read_setpoint: bool = False
    extras: frozenset[str] = field(default_factory=frozenset)
    """Optional abilities by name (for example "unlock", "phase_switch")."""
