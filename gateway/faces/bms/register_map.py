"""The BMS register map: a public contract, defined here and nowhere else.

An integrator programs these addresses into a building management system once and expects them to keep their
meaning for the life of the site. So addresses never move and never change meaning; a new register is only
added after the existing ones, and IR0 (the map version) goes up when that happens. The server, the table in
docs/bms.md (and the README's copy) and the tests all read this module, so the documentation cannot drift from
what the gateway serves.

Encoding, for every register (docs/bms.md repeats it for integrators):

* addresses are 0-based PDU addresses; a 32-bit value is two registers, high word first;
* currents are in 0.1 A, every value is rounded to the nearest step;
* a value below 0 reads 0 and a value above the largest reads the largest (65534, or 4294967294 for 32 bits);
* a value the gateway does not know reads 65535 (0xFFFF), or 4294967295 for 32 bits: "not available". So 0 is
  always a real zero (an effective limit of 0 means "paused", never "unknown"). Enumerations name their own
  unknown value instead (IEC 61851 state 0 = unknown).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from gateway.runtime.commands import (
    Command,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetEnabled,
    SetNetworkLimit,
    SetSessionNeed,
    SetUnitLimit,
)
from gateway.runtime.read_model import SiteStatus, UnitStatus

MAP_VERSION = 3
"""IR0. Raised whenever a register is added or an enumeration gains a value; existing registers and values never
change meaning. 2 → 3: IR13 value 6 (the BMS's own limit) and the session block (HR2000 + 3·i: departure and
energy wanted)."""

UNIT_LIMIT_BASE = 100
"""HR100 + i: the current limit of charger i."""
UNIT_BLOCK_BASE = 1000
"""IR1000 + 20·i: the status block of charger i."""
UNIT_BLOCK_SIZE = 20
MAX_UNITS = 1000
"""As many chargers as a site file may list (``SiteConfig.chargers``)."""
SESSION_BASE = 2000
"""HR2000 + 3·i: the departure and energy wanted of the session at charger i. Far enough above the last charger
limit (HR1099) that no request (at most 125 registers) can start among the limits and end in this block."""
SESSION_BLOCK_SIZE = 3
HOLDING_SIZE = SESSION_BASE + SESSION_BLOCK_SIZE * MAX_UNITS
INPUT_SIZE = UNIT_BLOCK_BASE + UNIT_BLOCK_SIZE * MAX_UNITS

AMPS = "0.1 A"
DECI = 10.0
"""Register value per ampere."""


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"


def encode(value: float | None, scale: float = 1.0, words: int = 1) -> list[int]:
    """``value × scale`` as ``words`` registers, high word first, clamped and with "not available" as above."""
    not_available = (1 << (16 * words)) - 1
    if value is None or not math.isfinite(value):
        raw = not_available
    else:
        # Compared before rounding: a huge finite value times the scale can overflow to infinity.
        scaled = value * scale
        raw = 0 if scaled <= 0 else not_available - 1 if scaled >= not_available - 1 else round(scaled)
    return [(raw >> (16 * (words - 1 - k))) & 0xFFFF for k in range(words)]


def decode(registers: list[int], scale: float = 1.0) -> float | None:
    """The value ``encode`` wrote (high word first); "not available" is None."""
    raw = 0
    for word in registers:
        raw = (raw << 16) | word
    return None if raw == (1 << (16 * len(registers))) - 1 else raw / scale


def largest_raw(maximum: float, scale: float) -> int:
    """The largest register value a write may carry for a physical ``maximum``: never above it after scaling.

    Rounded down (with a little slack for binary fractions: 3.2 A × 10 is 32.000000000000004), so 31.95 A
    allows 319, not 320.
    """
    return min(math.floor(maximum * scale + 1e-6), 0xFFFF)


@dataclass(frozen=True, slots=True)
class DocRow:
    """One line of the published register table."""

    address: str
    table: Table
    name: str
    type: str
    unit: str
    range: str
    access: str
    description: str


def _type(words: int) -> str:
    return "u32" if words == 2 else "u16"


def _span(first: int, words: int) -> str:
    return f"{first}" if words == 1 else f"{first}–{first + words - 1}"


@dataclass(frozen=True, slots=True)
class SiteValue:
    """A read-only site register (input table)."""

    address: int
    name: str
    unit: str
    scale: float
    read: Callable[[SiteStatus], float | None]
    range: str
    description: str
    words: int = 1

    def row(self) -> DocRow:
        return DocRow(_span(self.address, self.words), Table.INPUT, self.name, _type(self.words), self.unit,
                      self.range, "R", self.description)


@dataclass(frozen=True, slots=True)
class UnitValue:
    """A read-only register in each charger's block: IR1000 + 20·i + ``offset``."""

    offset: int
    name: str
    unit: str
    scale: float
    read: Callable[[UnitStatus], float | None]
    range: str
    description: str
    words: int = 1

    def row(self) -> DocRow:
        first = f"{UNIT_BLOCK_BASE} + {UNIT_BLOCK_SIZE}·i + {_span(self.offset, self.words)}"
        return DocRow(first, Table.INPUT, self.name, _type(self.words), self.unit, self.range, "R",
                      self.description)


@dataclass(frozen=True, slots=True)
class SiteSetting:
    """A writable site register (holding table): reads show the setting, a write becomes a command."""

    address: int
    name: str
    unit: str
    scale: float
    read: Callable[[SiteStatus], float]
    maximum: Callable[[SiteStatus], float]
    """The largest value a write may set (the least is always 0)."""
    command: Callable[[float], Command]
    range: str
    description: str

    def row(self) -> DocRow:
        return DocRow(str(self.address), Table.HOLDING, self.name, "u16", self.unit, self.range, "RW",
                      self.description)


@dataclass(frozen=True, slots=True)
class UnitSetting:
    """A writable register per charger: HR100 + i."""

    name: str
    unit: str
    scale: float
    read: Callable[[UnitStatus], float]
    maximum: Callable[[UnitStatus], float]
    command: Callable[[UnitStatus, float], Command]
    range: str
    description: str

    def row(self) -> DocRow:
        return DocRow(f"{UNIT_LIMIT_BASE} + i", Table.HOLDING, self.name, "u16", self.unit, self.range, "RW",
                      self.description)


@dataclass(frozen=True, slots=True)
class SessionSetting:
    """A writable register of each charger's session block: HR2000 + 3·i + ``offset``. "Not available" (65535,
    or 4294967295 for 32 bits) reads when nothing was said, and a write of it clears the value."""

    offset: int
    name: str
    unit: str
    scale: float
    words: int
    read: Callable[[UnitStatus], float | None]
    range: str
    description: str

    def row(self) -> DocRow:
        first = f"{SESSION_BASE} + {SESSION_BLOCK_SIZE}·i + {_span(self.offset, self.words)}"
        return DocRow(first, Table.HOLDING, self.name, _type(self.words), self.unit, self.range, "RW",
                      self.description)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The register whose every write tells the gateway the BMS is alive; it reads back the last value written."""

    address: int
    name: str
    description: str

    def row(self) -> DocRow:
        return DocRow(str(self.address), Table.HOLDING, self.name, "u16", "", "0–65535", "RW", self.description)


NETWORK_LIMIT = SiteSetting(
    0, "network_limit", AMPS, DECI,
    read=lambda s: s.network_limit_a,
    maximum=lambda s: s.installation_limit_a,
    command=lambda v: SetNetworkLimit(limit_a=v),
    range="0 – installation limit (IR15)",
    description="Network limit per phase; 0 pauses all charging. A write replaces the installer's network limit "
                "(IR13 reads 6 while it binds) until the installer sets it again, and counts as a heartbeat (HR4).")
SHARING_ENABLED = SiteSetting(
    1, "sharing_enabled", "", 1.0,
    read=lambda s: 1.0 if s.enabled else 0.0,
    maximum=lambda s: 1.0,
    command=lambda v: SetEnabled(enabled=v >= 1),
    range="0–1",
    description="Power sharing enabled (1) or disabled (0: no vehicle charges).")
BMS_WATCHDOG = SiteSetting(
    2, "bms_watchdog", "s", 1.0,
    read=lambda s: s.bms_watchdog_s,
    maximum=lambda s: 65535.0,
    command=lambda v: SetBmsWatchdog(timeout_s=v),
    range="0–65535",
    description="BMS watchdog; 0 = off. If no write to HR0 or HR4 arrives within it, the fallback limit (HR3) "
                "applies until the next such write.")
BMS_FALLBACK_LIMIT = SiteSetting(
    3, "bms_fallback_limit", AMPS, DECI,
    read=lambda s: s.bms_fallback_limit_a,
    maximum=lambda s: s.installation_limit_a,
    command=lambda v: SetBmsFallbackLimit(limit_a=v),
    range="0 – installation limit (IR15)",
    description="Limit per phase while the BMS watchdog has expired.")
HEARTBEAT = Heartbeat(
    4, "bms_heartbeat",
    "Any value written refreshes the BMS watchdog (a counter is fine); reads back the last value written.")
UNIT_LIMIT = UnitSetting(
    "charger_limit", AMPS, DECI,
    read=lambda u: u.limit_a,
    maximum=lambda u: u.max_current_a,
    command=lambda u, v: SetUnitLimit(charger_id=u.id, limit_a=v),
    range="0 – nameplate (IR1000 + 20·i + 12)",
    description="Current limit of charger i; 0 keeps it at 0 A.")

DEPARTURE = SessionSetting(
    0, "departure", "s", 1.0, 2,
    read=lambda u: u.departure_s,
    range="now – now + 7 days; 4294967295 = none",
    description="When the car at charger i leaves, as UTC UNIX time (seconds since 1970-01-01 00:00 UTC). Both "
                "registers in one write. Lasts until the car unplugs; written before a car arrives, it is for the "
                "next one.")
ENERGY_WANTED = SessionSetting(
    2, "energy_wanted", "0.1 kWh", 10.0, 1,
    read=lambda u: u.energy_wanted_kwh,
    range="1–10000; 65535 = none",
    description="Energy the car at charger i wants in this session, in total. Lasts like the departure.")

SITE_SETTINGS: tuple[SiteSetting, ...] = (NETWORK_LIMIT, SHARING_ENABLED, BMS_WATCHDOG, BMS_FALLBACK_LIMIT)
SESSION_SETTINGS: tuple[SessionSetting, ...] = (DEPARTURE, ENERGY_WANTED)

SITE_VALUES: tuple[SiteValue, ...] = (
    SiteValue(0, "map_version", "", 1.0, lambda s: MAP_VERSION, "≥ 1",
              "Version of this register map; raised when registers are added."),
    SiteValue(1, "chargers_configured", "", 1.0, lambda s: len(s.units), "0–1000",
              "Chargers in the site file: blocks i = 0 … n−1 exist."),
    SiteValue(2, "chargers_online", "", 1.0, lambda s: s.online, "0–1000", "Chargers the gateway can reach."),
    SiteValue(3, "chargers_charging", "", 1.0, lambda s: s.charging, "0–1000",
              "Chargers in IEC 61851 state C or D."),
    SiteValue(4, "effective_limit", AMPS, DECI, lambda s: min(s.effective_limit_a), "≥ 0",
              "Limit in force at the site per phase, after every source; the lowest phase if they differ."),
    SiteValue(5, "measured_current_l1", AMPS, DECI, lambda s: s.measured_a[0], "≥ 0",
              "Measured total current of the chargers, site phase L1."),
    SiteValue(6, "measured_current_l2", AMPS, DECI, lambda s: s.measured_a[1], "≥ 0",
              "Measured total current of the chargers, site phase L2."),
    SiteValue(7, "measured_current_l3", AMPS, DECI, lambda s: s.measured_a[2], "≥ 0",
              "Measured total current of the chargers, site phase L3."),
    SiteValue(8, "allocated_current_l1", AMPS, DECI, lambda s: s.allocated_a[0], "≥ 0",
              "Sum of the chargers' booked setpoints, site phase L1."),
    SiteValue(9, "allocated_current_l2", AMPS, DECI, lambda s: s.allocated_a[1], "≥ 0",
              "Sum of the chargers' booked setpoints, site phase L2."),
    SiteValue(10, "allocated_current_l3", AMPS, DECI, lambda s: s.allocated_a[2], "≥ 0",
              "Sum of the chargers' booked setpoints, site phase L3."),
    SiteValue(11, "active_power", "W", 1.0, lambda s: s.power_w, "≥ 0", "Total active power of the chargers.",
              words=2),
    SiteValue(13, "limit_source", "", 1.0, lambda s: int(s.limit_source), "1–6",
              "What sets the effective limit: 1 installation, 2 network limit (the installer's), 3 BMS fallback, "
              "4 OCPP, 5 site meter, 6 network limit written by the BMS (HR0; from map version 3)."),
    SiteValue(14, "gateway_status", "", 1.0, lambda s: int(s.health), "0–2",
              "0 ok, 1 degraded (a charger unavailable), 2 fault."),
    SiteValue(15, "installation_limit", AMPS, DECI, lambda s: s.installation_limit_a, "≥ 0",
              "Installation limit per phase: the most HR0 and HR3 accept."),
    SiteValue(16, "invariant_violations", "", 1.0, lambda s: s.invariant_violations, "≥ 0",
              "Control rounds since start whose own commands broke the safety invariant (bookings within every "
              "node limit on every phase). Anything above 0 is a defect of the gateway: report it.", words=2),
    SiteValue(18, "booked_excess", AMPS, DECI, lambda s: s.booked_excess_a, "≥ 0",
              "Worst amount by which the chargers' bookings exceed a node limit on a phase now: for a few seconds "
              "after a limit is lowered, or while an unreachable charger may draw more than the limit leaves."),
)

UNIT_VALUES: tuple[UnitValue, ...] = (
    UnitValue(0, "state", "", 1.0, lambda u: u.state.code if u.state is not None else 0, "0–6",
              "IEC 61851 state: 0 unknown, 1–6 = A–F (A no vehicle, B connected, C charging, D charging with "
              "ventilation, E/F error)."),
    UnitValue(1, "availability", "", 1.0, lambda u: int(u.availability), "0–2",
              "0 unavailable (not reachable or invalid readings), 1 available, 2 disabled."),
    UnitValue(2, "setpoint", AMPS, DECI, lambda u: u.setpoint_a, "≥ 0",
              "The setpoint the charger last acknowledged."),
    UnitValue(3, "current_l1", AMPS, DECI, lambda u: u.current_a[0], "≥ 0", "Measured current on site phase L1."),
    UnitValue(4, "current_l2", AMPS, DECI, lambda u: u.current_a[1], "≥ 0", "Measured current on site phase L2."),
    UnitValue(5, "current_l3", AMPS, DECI, lambda u: u.current_a[2], "≥ 0", "Measured current on site phase L3."),
    UnitValue(6, "active_power", "W", 1.0, lambda u: u.power_w, "≥ 0", "Active power.", words=2),
    UnitValue(8, "session_energy", "Wh", 1.0, lambda u: u.session_energy_wh, "≥ 0",
              "Energy of the current (or last) session.", words=2),
    UnitValue(10, "link_quality", "%", 100.0, lambda u: u.link.success_rate, "0–100",
              "Share of recent exchanges with the charger that succeeded."),
    UnitValue(11, "error_code", "", 1.0, lambda u: u.error_code, "0–65534",
              "The charger's own error code; 0 = none."),
    UnitValue(12, "nameplate_current", AMPS, DECI, lambda u: u.max_current_a, "≥ 0",
              "Nameplate maximum per phase: the most HR100 + i accepts."),
    UnitValue(13, "waiting", "", 1.0, lambda u: 1.0 if u.waiting else 0.0, "0–1",
              "1 = a car is plugged in and wants current but gets none now (rotation or disabled)."),
    UnitValue(14, "energy_total", "Wh", 1.0, lambda u: u.energy_wh, "≥ 0",
              "Lifetime energy meter of the charger; 4294967295 if it has none.", words=2),
)
"""Offsets 16–19 of each block are reserved: they read 0 (so whole blocks can be read in one request)."""


SITE_SETTING_AT: dict[int, SiteSetting] = {s.address: s for s in SITE_SETTINGS}


def site_input_registers(status: SiteStatus) -> dict[int, int]:
    """Every site input register (IR0 …) of a snapshot, by address."""
    out: dict[int, int] = {}
    for v in SITE_VALUES:
        for word, register in enumerate(encode(v.read(status), v.scale, v.words)):
            out[v.address + word] = register
    return out


def unit_input_block(unit: UnitStatus) -> list[int]:
    """The 20 registers of a charger's status block; reserved offsets read 0."""
    block = [0] * UNIT_BLOCK_SIZE
    for v in UNIT_VALUES:
        block[v.offset:v.offset + v.words] = encode(v.read(unit), v.scale, v.words)
    return block


def session_registers(departure_s: float | None, energy_kwh: float | None) -> list[int]:
    """The three registers of a session block."""
    return encode(departure_s, DEPARTURE.scale, DEPARTURE.words) + encode(energy_kwh, ENERGY_WANTED.scale)


def session_command(unit: UnitStatus, departure_s: float | None, energy_kwh: float | None) -> SetSessionNeed:
    """The command a session block write becomes: the same as the web API's, checked by the same rule."""
    departure = None if departure_s is None else datetime.fromtimestamp(departure_s, UTC)
    return SetSessionNeed(charger_id=unit.id, departure=departure, energy_kwh=energy_kwh)


def all_rows() -> list[DocRow]:
    """Every register in the order of the published table: holding first, then input, by address."""
    holding = [s.row() for s in SITE_SETTINGS] + [HEARTBEAT.row(), UNIT_LIMIT.row()]
    holding += [s.row() for s in SESSION_SETTINGS]
    return holding + [v.row() for v in SITE_VALUES] + [v.row() for v in UNIT_VALUES]
