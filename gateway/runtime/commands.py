"""What the integration faces (BMS, OCPP, web, CLI) may ask of the running gateway.

A face never talks to a driver. It submits one of these to the supervisor through ``GatewayControl.apply``,
which validates it against the same rules as the site file, persists it, wakes the control loop and returns,
all synchronously, so a Modbus server action can call it without awaiting (see the pymodbus notes: an action
that awaits corrupts TCP transaction ids). A refused command raises ``CommandRejected`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.errors import InputError
from gateway.runtime.read_model import Event, SiteStatus
from gateway.site.config import BmsConfig, ChargerConfig, CircuitConfig, MeterConfig, OcppConfig


class CommandRejected(InputError):
    """The command breaks a rule; the message says which, in words an installer understands."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class SetNetworkLimit:
    limit_a: float
    """Per phase; 0 pauses all charging. At most the installation limit."""


@dataclass(frozen=True, slots=True)
class SetEnabled:
    enabled: bool


@dataclass(frozen=True, slots=True)
class SetUnitLimit:
    charger_id: str
    limit_a: float
    """0 to the unit's nameplate; 0 keeps the unit at 0 A."""


@dataclass(frozen=True, slots=True)
class SetBmsWatchdog:
    timeout_s: float
    """0 turns the watchdog off."""


@dataclass(frozen=True, slots=True)
class SetBmsFallbackLimit:
    limit_a: float


@dataclass(frozen=True, slots=True)
class BmsHeartbeat:
    """Any write to the heartbeat register: the BMS is alive."""


@dataclass(frozen=True, slots=True)
class AddFollower:
    charger: ChargerConfig


@dataclass(frozen=True, slots=True)
class RemoveFollower:
    charger_id: str


@dataclass(frozen=True, slots=True)
class SetInstallationLimit:
    limit_a: float
    """Per phase: the main breaker; nothing the gateway is told goes above it. Applies at the next control step."""


@dataclass(frozen=True, slots=True)
class SetCircuit:
    """Add a circuit node (``circuit_id`` None) or change one: its limit, its parent, its name (``circuit.id``; the
    units, the sub-circuits and the meter on it follow a new name). Applies at the next control step."""

    circuit_id: str | None
    circuit: CircuitConfig


@dataclass(frozen=True, slots=True)
class RemoveCircuit:
    """Only a circuit without units, sub-circuits or a meter on it can go."""

    circuit_id: str


@dataclass(frozen=True, slots=True)
class SetUnitWiring:
    """How one charger is wired: its breaker (None: its nameplate), its phases, which site phase its L1, L2, L3 land
    on, and the circuit it hangs from. Applies at the next control step."""

    charger_id: str
    breaker_limit_a: float | None
    phases: int
    phase_rotation: str
    circuit: str


@dataclass(frozen=True, slots=True)
class SetMeter:
    """The site meter (None: none). Its limits and circuit apply at the next control step; another device (profile,
    connection) when the gateway restarts."""

    meter: MeterConfig | None


@dataclass(frozen=True, slots=True)
class SetBms:
    """The BMS face (None: none). Applies when the gateway restarts."""

    bms: BmsConfig | None


@dataclass(frozen=True, slots=True)
class SetOcppUpstream:
    """The connection to the central system (None: none). Applies when the gateway restarts. A ``password`` in it
    (the AuthorizationKey) is kept in a file of the state directory, readable by the gateway only."""

    ocpp: OcppConfig | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class SetSessionNeed:
    """The present (or next) session at a charger leaves at ``departure`` and/or wants ``energy_kwh``; both None
    clears it. Session state, not a setting: it is not persisted and ends when the car unplugs."""

    charger_id: str
    departure: datetime | None
    """Timezone-aware; in the future, at most 7 days ahead."""
    energy_kwh: float | None


Command = (SetNetworkLimit | SetEnabled | SetUnitLimit | SetBmsWatchdog | SetBmsFallbackLimit | BmsHeartbeat
           | AddFollower | RemoveFollower | SetSessionNeed | SetInstallationLimit | SetCircuit | RemoveCircuit
           | SetUnitWiring | SetMeter | SetBms | SetOcppUpstream)


class GatewayControl(Protocol):
    """The supervisor as the faces see it."""

    def status(self) -> SiteStatus:
        """The latest published snapshot (cheap: no I/O)."""
        ...

    def apply(self, command: Command, origin: str) -> None:
        """Validate, persist and act on ``command`` at once; ``origin`` (e.g. "bms 10.0.0.5") goes to the log.

        Raises ``CommandRejected`` (nothing changed) for a value the rules refuse.
        """
        ...

    def updates(self) -> AsyncIterator[SiteStatus]:
        """Each new snapshot as it is published (for live pages and OCPP status changes)."""
        ...

    def recent_events(self) -> tuple[Event, ...]:
        """The latest state changes and settings changes, oldest first."""
        ...
