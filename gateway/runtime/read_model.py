"""What the gateway shows the world: one immutable snapshot, published after every control step.

The BMS registers, OCPP StatusNotifications and MeterValues, the web page and the CLI all read this and nothing
else, so they can never disagree with each other or see a half-updated state. Currents here are on *site*
phases L1..L3 (phase rotation already applied), since that is what a building's breakers see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from drivers.model import Iec61851State
from gateway.core.limits import LimitSource

SitePhases = tuple[float, float, float]


def sum_phases(values: Iterable[SitePhases]) -> SitePhases:
    totals = [0.0, 0.0, 0.0]
    for amps in values:
        for p in range(3):
            totals[p] += amps[p]
    return (totals[0], totals[1], totals[2])


class Availability(IntEnum):
    """Numbered as in the BMS register map (IR1000 + 20·i + 1)."""

    UNAVAILABLE = 0
    AVAILABLE = 1
    DISABLED = 2


class GatewayHealth(IntEnum):
    """IR14: 0 ok, 1 degraded (a unit unavailable), 2 fault."""

    OK = 0
    DEGRADED = 1
    FAULT = 2


@dataclass(frozen=True, slots=True)
class Event:
    """Something an installer or operator wants to see in a log: a state change, not a poll."""

    time_s: float
    """Wall-clock time (UNIX seconds)."""
    kind: str
    """"unit-unavailable", "unit-available", "setting", "limit-source"."""
    text: str
    origin: str | None = None
    """Who made a change: "bms 10.0.0.5:50123", "web admin@10.0.0.7", "ocpp", "site file"."""


@dataclass(frozen=True, slots=True)
class LinkQuality:
    success_rate: float
    """Fraction of recent exchanges that succeeded, 0..1."""
    latency_ms: float | None
    last_seen_s: float | None
    """Wall-clock time (UNIX seconds) of the last successful exchange."""


@dataclass(frozen=True, slots=True)
class UnitStatus:
    id: str
    index: int
    """Position in the site's charger list: BMS block i, OCPP connector i + 1."""
    state: Iec61851State | None
    availability: Availability
    unavailable_reason: str | None
    """Why it is unavailable: "timeout", "connection refused", "exception 4", "invalid readings: current_a", ..."""
    setpoint_a: float
    """The setpoint the charger last acknowledged."""
    current_a: SitePhases
    """Measured current on site phases L1..L3."""
    power_w: float
    session_energy_wh: float
    energy_wh: float | None
    limit_a: float
    """The unit's own limit (breaker or runtime setting)."""
    max_current_a: float
    """Nameplate."""
    waiting: bool
    """A car is plugged in and wants current but gets none now (scarcity rotation, or disabled)."""
    link: LinkQuality
    error_code: int = 0
    id_tag: str | None = None
    """The idTag of the session the charger itself runs (OCPP followers); None for chargers that know none."""
    booked_a: SitePhases = (0.0, 0.0, 0.0)
    """What the controller counts for it per site phase: max(what it may draw, what it draws). For a unit that
    does not answer this is all that is known: its car may still charge at up to it."""
    departure_s: float | None = None
    """When the present (or next) session's car leaves, as a face set it (web API, BMS): wall-clock UNIX seconds.
    None if none was set; a site file's schedule is not shown here (it is resolved per session by the gateway)."""
    energy_wanted_kwh: float | None = None
    """Energy the present (or next) session wants in total, as a face set it; None if none was set."""

    @property
    def answering(self) -> bool:
        return self.availability is not Availability.UNAVAILABLE

    @property
    def drawn_a(self) -> SitePhases:
        """What it counts for in "drawn now": its measured current while it answers, else its booked current.

        A unit that stops answering measures nothing, yet its car may still draw what it was allowed; the
        controller keeps it booked, and whoever shows "drawn now" must count it the same way.
        """
        return self.current_a if self.answering else self.booked_a


@dataclass(frozen=True, slots=True)
class CircuitStatus:
    """One circuit (distribution board) of the site file: its limit in force and what its units draw."""

    id: str
    limit_a: SitePhases
    """The limit in force at this node, per phase, after every source is applied."""
    drawn_a: SitePhases
    """The ``drawn_a`` of every unit on this circuit or a circuit below it."""


@dataclass(frozen=True, slots=True)
class SiteStatus:
    time_s: float
    """Wall-clock time (UNIX seconds) the snapshot was taken."""
    enabled: bool
    installation_limit_a: float
    network_limit_a: float
    effective_limit_a: SitePhases
    """The limit in force at the site node, per phase, after every source is applied."""
    limit_source: LimitSource
    measured_a: SitePhases
    allocated_a: SitePhases
    """Sum of setpoints booked per phase."""
    power_w: float
    units: tuple[UnitStatus, ...]
    health: GatewayHealth
    bms_watchdog_s: float = 0.0
    """0 = off; otherwise the fallback limit applies if no BMS limit write or heartbeat arrives within it."""
    bms_fallback_limit_a: float = 0.0
    invariant_violations: int = 0
    """Control rounds since start whose own commands broke the safety invariant (``gateway.core.round``); any
    value above 0 is a defect of the gateway, logged with the node and phase."""
    booked_excess_a: float = 0.0
    """The worst amount, in A, by which bookings exceed a node's limit on a phase now: for a few seconds after a
    limit is lowered (cars are booked at their old current until they have come down), or while a charger that
    cannot be reached may draw more than the new limit leaves. 0 in steady operation."""
    circuits: tuple[CircuitStatus, ...] = ()
    """The site file's circuits, in its order (none on a site without circuits)."""

    @property
    def drawn_a(self) -> SitePhases:
        """Per phase: the ``drawn_a`` of every unit (measured where it answers, booked where it does not)."""
        return sum_phases(unit.drawn_a for unit in self.units)

    @property
    def online(self) -> int:
        return sum(1 for u in self.units if u.availability is not Availability.UNAVAILABLE)

    @property
    def charging(self) -> int:
        return sum(1 for u in self.units if u.state is not None and u.state.charging)
