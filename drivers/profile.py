"""Register-map profiles: what a device family's registers mean, as validated data, and the registry of them.

A profile describes a family of chargers or meters (addresses, types, scales, enum maps, quirks) and nothing about
one installation: host, port, serial line and unit id live in the site file. One generic driver per kind reads the
profile, so a new charger model is a YAML file and a test, not Python code.

Validation is strict because a wrong scale is a tripped breaker: unknown keys are errors, the register count must
match the type, points may not overlap unless they say so, anything written must name its function code, and a
charger must at least report its state and accept a setpoint. Every message names the file and the key path
(``abb-terra-ac.yaml: points.setpoint.write_fc: ...``), in the style of the site file's errors.

Public surface (kept stable for the drivers and the simulator):

* ``ChargerProfile`` / ``MeterProfile`` (``Profile`` is either), their ``Point``\\s and ``ReadBlock`` read plans;
* ``parse_profile(data, source)`` and ``load_profile(path)``;
* ``ProfileRegistry`` with ``shipped()``, ``load(dirs)``, ``get``, ``charger``, ``meter``, ``names``, ``nameplate_a``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from drivers.codec import DataType, Decoded, EnumKey, Format, InvalidReading, Value, WordOrder, decode, encode
from drivers.errors import ProfileError
from drivers.model import ChargerCapabilities, Iec61851State
from drivers.strict_yaml import load_yaml

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
MAX_PDU_REGISTERS = 125
"""The most registers one Modbus read may return (FC3/FC4); coils and discrete inputs allow more, but a profile
that needs more than this per block has other problems."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class Trust(StrEnum):
    """How sure the research is of a fact (the register-map research marks ✅ / ⚠️ / ❌)."""

    SURE = "sure"
    """Manufacturer document, or two independent sources that agree."""
    SINGLE = "single"
    """One non-manufacturer source only."""
    CONFLICT = "conflict"
    """Sources disagree; ``notes`` says which value was chosen and why."""


class TransportKind(StrEnum):
    TCP = "tcp"
    RTU = "rtu"
    RTU_OVER_TCP = "rtu-over-tcp"


class KeepAlive(StrEnum):
    """What keeps a charger's communication watchdog from expiring."""

    NONE = "none"
    """No watchdog: the device never falls back on its own."""
    TRAFFIC = "traffic"
    """Any request (the regular poll) resets it."""
    SETPOINT = "setpoint"
    """Only a write of the setpoint resets it: re-write the last setpoint."""
    HEARTBEAT = "heartbeat"
    """Write ``heartbeat_value`` to the ``heartbeat`` point (a life bit the device clears, or a token)."""
    TIMEOUT = "timeout"
    """Re-write the ``failsafe_timeout`` point."""


class PauseMethod(StrEnum):
    SETPOINT_ZERO = "setpoint_zero"
    """Writing 0 to the setpoint stops charging."""
    DISABLE = "disable"
    """The setpoint has a minimum above 0; stop charging by writing the ``enable`` point's off value."""


UNIT_OF_ROLE: Mapping[str, str] = {
    **{f"current_l{i}": "A" for i in (1, 2, 3)},
    **{f"voltage_l{i}": "V" for i in (1, 2, 3)},
    "power": "W", "energy": "Wh", "session_energy": "Wh", "energy_import": "Wh",
    "setpoint": "A", "setpoint_readback": "A", "failsafe_current": "A", "nameplate": "A",
    "failsafe_timeout": "s",
}
"""The unit every role point's engineering value is in after scaling (scale converts mA, 0.1 kWh, ... to it)."""

PLAUSIBLE_RANGE: Mapping[str, tuple[float, float]] = {
    "A": (0.0, 1_000.0), "V": (0.0, 1_000.0), "W": (-1e7, 1e7), "Wh": (0.0, 1e13),
}
"""Applied to a charger role point that declares no valid range of its own, so that 0xFFFF read as 6553.5 A or
0xFFFFFFFF Wh is reported as invalid instead of believed. Meters declare their own (their power is signed)."""


class Point(Strict):
    """One value in the register map. Addresses are 0-based PDU addresses (what goes on the wire)."""

    table: Table
    address: int = Field(ge=0, le=0xFFFF)
    type: DataType = DataType.U16
    count: int | None = Field(default=None, ge=1, le=MAX_PDU_REGISTERS)
    """Registers occupied: required for strings, otherwise implied by the type (and checked if given)."""
    word_order: WordOrder = WordOrder.BIG
    byte_swap: bool = False
    scale: float = Field(default=1.0, allow_inf_nan=False)
    """engineering value = raw × scale + offset (e.g. 0.001 for mA -> A, 100 for 0.1 kWh -> Wh)."""
    offset: float = Field(default=0.0, allow_inf_nan=False)
    mask: int | None = Field(default=None, gt=0, le=2**64 - 1)
    unit: str | None = None
    valid_min: float | None = Field(default=None, allow_inf_nan=False)
    valid_max: float | None = Field(default=None, allow_inf_nan=False)
    invalid_raw: tuple[int, ...] = ()
    """Raw unsigned values that mean "not available" (e.g. 65535, 4294967295)."""
    enum: dict[EnumKey, str] | None = None
    access: Literal["r", "w", "rw"] = "r"
    write_fc: Literal[5, 6, 15, 16] | None = None
    resolution: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Step of the engineering value on writes; defaults to ``scale`` for integer types."""
    device_id: int | None = Field(default=None, ge=0, le=255)
    """Answered by this unit id instead of the charger's own (e.g. Alfen station registers on unit 200)."""
    overlaps: tuple[str, ...] = ()
    """Names of points that may share registers with this one (different bits of one register)."""
    trust: Trust = Trust.SURE
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        self.format()  # raises ValueError for a count that does not match the type, a zero scale, a bad mask
        if self.table.is_bit != (self.type is DataType.BOOL):
            raise ValueError("coils and discrete inputs have type bool, and only they do")
        if (self.valid_min is not None and self.valid_max is not None) and self.valid_min > self.valid_max:
            raise ValueError("valid_min is above valid_max")
        if not self.writable:
            if self.write_fc is not None:
                raise ValueError("write_fc given for a point that is not writable (access: r)")
            return self
        if self.table in (Table.INPUT, Table.DISCRETE):
            raise ValueError(f"{self.table} points are read-only; use access: r")
        allowed = (5, 15) if self.table is Table.COIL else (6, 16)
        if self.write_fc is None:
            raise ValueError(f"a writable point needs write_fc (one of {allowed})")
        if self.write_fc not in allowed:
            raise ValueError(f"write_fc {self.write_fc} cannot write a {self.table} point; use one of {allowed}")
        if self.write_fc == 6 and self.register_count != 1:
            raise ValueError(f"write_fc 6 writes one register, this point has {self.register_count}; use 16")
        return self

    @property
    def readable(self) -> bool:
        return "r" in self.access

    @property
    def writable(self) -> bool:
        return "w" in self.access

    @property
    def register_count(self) -> int:
        fixed = self.type.fixed_count
        return fixed if fixed is not None else int(self.count or 0)

    @property
    def end(self) -> int:
        """One past the last register (or bit) of this point."""
        return self.address + self.register_count

    def format(self, default_range: tuple[float, float] | None = None) -> Format:
        low, high = self.valid_min, self.valid_max
        if default_range is not None and low is None and high is None and self.enum is None:
            low, high = default_range
        return Format(type=self.type, count=self.count, word_order=self.word_order, byte_swap=self.byte_swap,
                      scale=self.scale, offset=self.offset, mask=self.mask, valid_min=low, valid_max=high,
                      invalid_raw=frozenset(self.invalid_raw), enum=self.enum, resolution=self.resolution)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read transaction of a poll: ``count`` registers (or bits) from ``start`` of ``table``."""

    device_id: int | None
    """None: the unit id the site file gives the device."""
    table: Table
    start: int
    count: int
    points: tuple[str, ...]
    """Names of the points this block carries, in address order."""

    def slice(self, point: Point, values: Sequence[int]) -> list[int]:
        """The registers of ``point`` out of what this block's read returned."""
        if len(values) < self.count:
            raise ValueError(f"block at {self.start} needs {self.count} values, got {len(values)}")
        first = point.address - self.start
        return [int(v) for v in values[first:first + point.register_count]]


def plan_reads(points: Mapping[str, Point], max_registers: int, max_gap: int = 0) -> tuple[ReadBlock, ...]:
    """Merge points into as few reads as the device allows: one read per contiguous block.

    Points on the same unit id and table are merged while the block stays within ``max_registers`` and the hole
    between two points is at most ``max_gap`` registers (holes are read and ignored, so only profiles whose
    device answers unmapped registers should allow them).
    """
    groups: dict[tuple[int, str], list[tuple[str, Point]]] = {}
    for name, point in points.items():
        key = (-1 if point.device_id is None else point.device_id, point.table.value)
        groups.setdefault(key, []).append((name, point))
    blocks: list[ReadBlock] = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda item: (item[1].address, item[1].end, item[0]))
        start, end, names = members[0][1].address, members[0][1].end, [members[0][0]]
        for name, point in members[1:]:
            new_end = max(end, point.end)
            if point.address <= end + max_gap and new_end - start <= max_registers:
                end, names = new_end, [*names, name]
                continue
            blocks.append(_block(members[0][1], start, end, names))
            start, end, names = point.address, point.end, [name]
        blocks.append(_block(members[0][1], start, end, names))
    return tuple(blocks)


def _block(sample: Point, start: int, end: int, names: list[str]) -> ReadBlock:
    return ReadBlock(sample.device_id, sample.table, start, end - start, tuple(names))


class InitWrite(Strict):
    """A value written once after every (re)connect, because the device forgets it (e.g. at standby)."""

    point: str
    value: float | str


class Quirks(Strict):
    """What real devices need beyond the register map; the generic drivers act on these without code."""

    setpoint_refresh_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Re-write the current setpoint at least this often even when it did not change."""
    max_registers_per_read: int = Field(default=MAX_PDU_REGISTERS, ge=1, le=MAX_PDU_REGISTERS)
    """Largest block one read may ask for (KEBA P40: 2, one value per read)."""
    max_gap_registers: int = Field(default=0, ge=0, le=MAX_PDU_REGISTERS)
    """Unmapped registers a read may span to join two points (0: only truly adjacent points are merged)."""
    min_read_interval_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    min_write_interval_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """The device rejects or ignores writes closer together than this (KEBA P40: 5 s)."""
    inter_frame_gap_ms: float = Field(default=0.0, ge=0, le=10_000, allow_inf_nan=False)
    """Silence to keep on the line between two requests to this device."""
    write_needs_enable: bool = False
    """A setpoint only takes effect while the ``enable`` point is on: write it on before raising the setpoint."""
    init_writes: tuple[InitWrite, ...] = ()


class ProfileMeta(Strict):
    """What every profile says about itself."""

    name: str = Field(pattern=NAME_PATTERN)
    """The id the site file's ``profile:`` key uses; the file must be called ``<name>.yaml``."""
    manufacturer: str = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    transports: tuple[TransportKind, ...] = Field(min_length=1)
    default_unit_id: int = Field(default=1, ge=0, le=255)
    trust: Trust = Trust.SURE
    sources: tuple[str, ...] = ()
    notes: str = ""
    quirks: Quirks = Quirks()
    aux: dict[str, Point] = {}
    """Points that are no role of their own but feed ``state_rules`` or ``init_writes``, or document the map."""

    ROLE_FIELDS: ClassVar[tuple[str, ...]] = ()
    POLL_ROLES: ClassVar[tuple[str, ...]] = ()

    def roles(self) -> dict[str, Point]:
        """The declared role points by role name."""
        raise NotImplementedError

    def all_points(self) -> dict[str, Point]:
        """Every declared point, roles and aux, by name."""
        return {**self.roles(), **self.aux}

    @cached_property
    def formats(self) -> Mapping[str, Format]:
        """Every point's format (see ``format_of``), built once: a poll decodes through these."""
        roles = self.roles()
        return {name: point.format(self._default_range(UNIT_OF_ROLE.get(name) if name in roles else None))
                for name, point in self.all_points().items()}

    def point(self, name: str) -> Point:
        found = self.all_points().get(name)
        if found is None:
            raise KeyError(f"profile {self.name!r} declares no point {name!r}")
        return found

    def has(self, name: str) -> bool:
        return name in self.all_points()

    def format_of(self, name: str) -> Format:
        """The point's format, with the plausible range of its role where the profile declares none."""
        found = self.formats.get(name)
        if found is None:
            raise KeyError(f"profile {self.name!r} declares no point {name!r}")
        return found

    def _default_range(self, unit: str | None) -> tuple[float, float] | None:
        return None

    def decode(self, name: str, registers: Sequence[int]) -> Decoded:
        return decode(registers, self.format_of(name))

    def encode(self, name: str, value: Value) -> list[int]:
        """Registers to write ``value`` to point ``name``; ``ValueError`` if it does not fit the point."""
        return encode(value, self.format_of(name))

    def poll_points(self) -> tuple[str, ...]:
        """The points one regular poll reads."""
        roles = self.roles()
        return tuple(n for n in self.POLL_ROLES if n in roles and roles[n].readable)

    def read_plan(self, names: Iterable[str] | None = None) -> tuple[ReadBlock, ...]:
        """Blocks to read ``names`` (default: one poll) with as few transactions as the device allows."""
        wanted = self.poll_points() if names is None else tuple(names)
        chosen = {n: self.point(n) for n in wanted}
        return plan_reads(chosen, self.quirks.max_registers_per_read, self.quirks.max_gap_registers)

    def decode_block(self, block: ReadBlock, values: Sequence[int]) -> dict[str, Decoded]:
        """Decode every point of ``block`` from the values its read returned."""
        points = self.all_points()
        return {n: decode(block.slice(points[n], values), self.formats[n]) for n in block.points}

    def _issues(self) -> list[tuple[str, str]]:
        issues: list[tuple[str, str]] = []
        roles = self.roles()
        for name in set(roles) & set(self.aux):
            issues.append((f"aux.{name}", "an aux point may not reuse a role name"))
        for name, point in roles.items():
            unit = UNIT_OF_ROLE.get(name)
            if unit is not None and point.unit is not None and point.unit != unit:
                issues.append((f"points.{name}.unit", f"must be {unit!r}: scale converts the raw value to {unit}"))
        points = self.all_points()
        for name in self.poll_points():
            polled = points.get(name)
            if polled is not None and polled.register_count > self.quirks.max_registers_per_read:
                issues.append((f"{_path_of(self, name)}", f"{polled.register_count} registers exceed quirks."
                               f"max_registers_per_read ({self.quirks.max_registers_per_read}); a poll reads it"))
        issues += _overlap_issues(self)
        for i, write in enumerate(self.quirks.init_writes):
            where = f"quirks.init_writes[{i}]"
            if not self.has(write.point):
                issues.append((f"{where}.point", f"no point named {write.point!r}"))
            elif not self.point(write.point).writable:
                issues.append((f"{where}.point", f"{write.point!r} is not writable"))
            else:
                try:
                    self.encode(write.point, write.value)
                except ValueError as exc:
                    issues.append((f"{where}.value", str(exc)))
        return issues


def _path_of(profile: ProfileMeta, name: str) -> str:
    return f"aux.{name}" if name in profile.aux else f"points.{name}"


def _overlap_issues(profile: ProfileMeta) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    items = sorted(profile.all_points().items(), key=lambda item: (item[1].device_id or -1, item[1].table.value,
                                                                    item[1].address, item[0]))
    for i, (name, point) in enumerate(items):
        for other_name, other in items[i + 1:]:
            if (other.device_id, other.table) != (point.device_id, point.table) or other.address >= point.end:
                continue
            if other_name in point.overlaps or name in other.overlaps:
                continue
            issues.append((f"{_path_of(profile, other_name)}.address",
                           f"{other.table} {other.address} overlaps {name!r} ({point.address}..{point.end - 1}); "
                           "list it in `overlaps` if they share a register on purpose"))
    return issues


class ChargerPoints(Strict):
    """The roles a charger point can play. Only ``setpoint`` and a state (this or ``state_rules``) are required."""

    state: Point | None = None
    """Charge state; its ``enum`` maps raw values (or text) to IEC 61851 letters A–F."""
    current_l1: Point | None = None
    current_l2: Point | None = None
    current_l3: Point | None = None
    voltage_l1: Point | None = None
    voltage_l2: Point | None = None
    voltage_l3: Point | None = None
    power: Point | None = None
    energy: Point | None = None
    """Lifetime energy counter (or since power-on, if that is all the device has: say so in notes)."""
    session_energy: Point | None = None
    setpoint: Point | None = None
    setpoint_readback: Point | None = None
    """Where the device reports the limit it applies, if that is not the setpoint register itself."""
    enable: Point | None = None
    failsafe_current: Point | None = None
    failsafe_timeout: Point | None = None
    heartbeat: Point | None = None
    nameplate: Point | None = None
    """The unit's own maximum current, where the device reports it (the profile's ``nameplate_a`` bounds it)."""
    serial: Point | None = None
    firmware: Point | None = None
    model: Point | None = None
    error_code: Point | None = None


class StateRule(Strict):
    """One rule of a derived charge state: if every listed point has one of the listed values, the state is ``state``.

    Values are compared after mask and enum (an enum point is matched by name). A rule with no ``when`` matches
    always, as the last "otherwise" rule.
    """

    when: dict[str, tuple[EnumKey, ...]] = {}
    state: Iec61851State


class ChargerControl(Strict):
    """How the setpoint is commanded."""

    min_current_a: float = Field(default=6.0, gt=0, le=100, allow_inf_nan=False)
    """Lowest non-zero setpoint the device accepts."""
    max_current_a: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    """Highest setpoint the register accepts; defaults to ``nameplate_a``."""
    pause: PauseMethod = PauseMethod.SETPOINT_ZERO
    enable_on: int = 1
    enable_off: int = 0


class Watchdog(Strict):
    """The device's communication watchdog: what keeps it alive and how often."""

    keep_alive: KeepAlive = KeepAlive.NONE
    heartbeat_value: int = Field(default=1, ge=0, le=0xFFFF)
    interval_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Longest time between two keep-alives (a fixed device requirement), if any."""
    fraction_of_timeout: float = Field(default=0.25, gt=0, le=1, allow_inf_nan=False)
    """Otherwise keep alive every ``fraction × communication timeout``."""
    fixed_timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """The device's timeout where it cannot be programmed over Modbus (set on the device itself)."""

    def period_s(self, timeout_s: float) -> float | None:
        """How often to keep alive for a communication timeout of ``timeout_s``; None when nothing is needed."""
        if self.keep_alive is KeepAlive.NONE:
            return None
        timeout = self.fixed_timeout_s if self.fixed_timeout_s is not None else timeout_s
        period = timeout * self.fraction_of_timeout
        return min(period, self.interval_s) if self.interval_s is not None else period


class ChargerProfile(ProfileMeta):
    kind: Literal["charger"]
    phases: Literal[1, 3] = 3
    nameplate_a: float = Field(gt=0, le=1000, allow_inf_nan=False)
    """The family's maximum current per phase: the site file's breaker limits are checked against it."""
    points: ChargerPoints
    state_rules: tuple[StateRule, ...] = ()
    """Derive the state from several points (first matching rule wins) instead of a ``state`` point."""
    control: ChargerControl = ChargerControl()
    watchdog: Watchdog = Watchdog()

    ROLE_FIELDS: ClassVar[tuple[str, ...]] = tuple(ChargerPoints.model_fields)
    POLL_ROLES: ClassVar[tuple[str, ...]] = (
        "state", "current_l1", "current_l2", "current_l3", "voltage_l1", "voltage_l2", "voltage_l3", "power",
        "energy", "session_energy", "setpoint_readback", "enable", "error_code")
    IDENTITY_ROLES: ClassVar[tuple[str, ...]] = ("serial", "firmware", "model")

    def roles(self) -> dict[str, Point]:
        return {n: p for n in self.ROLE_FIELDS if (p := getattr(self.points, n)) is not None}

    def _default_range(self, unit: str | None) -> tuple[float, float] | None:
        return PLAUSIBLE_RANGE.get(unit or "")

    @property
    def setpoint_readback_point(self) -> str | None:
        """The point to read the applied setpoint from: the read-back register, or the setpoint if readable."""
        if self.points.setpoint_readback is not None:
            return "setpoint_readback"
        setpoint = self.points.setpoint
        return "setpoint" if setpoint is not None and setpoint.readable else None

    @property
    def max_setpoint_a(self) -> float:
        return self.control.max_current_a if self.control.max_current_a is not None else self.nameplate_a

    @property
    def resolution_a(self) -> float:
        step = self.format_of("setpoint").step
        return step if step is not None else 0.1

    def state_points(self) -> tuple[str, ...]:
        """The points the charge state is decoded from."""
        if not self.state_rules:
            return ("state",)
        names: list[str] = []
        for rule in self.state_rules:
            names += [n for n in rule.when if n not in names]
        return tuple(names)

    def poll_points(self) -> tuple[str, ...]:
        names = list(super().poll_points())
        names += [n for n in self.state_points() if n not in names]
        readback = self.setpoint_readback_point
        if readback is not None and readback not in names:
            names.append(readback)
        return tuple(names)

    def derive_state(self, decoded: Mapping[str, Decoded]) -> Iec61851State | InvalidReading:
        """The IEC 61851 state from the decoded state point(s) of one poll."""
        if not self.state_rules:
            value = decoded.get("state")
            if isinstance(value, InvalidReading):
                return value
            if not isinstance(value, str) or value not in Iec61851State.__members__:
                return InvalidReading(f"state {value!r} is no IEC 61851 state", ())
            return Iec61851State(value)
        for rule in self.state_rules:
            matched = True
            for name, allowed in rule.when.items():
                value = decoded.get(name)
                if isinstance(value, InvalidReading):
                    return value
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if value not in allowed:
                    matched = False
                    break
            if matched:
                return rule.state
        shown = {n: decoded.get(n) for n in self.state_points()}
        return InvalidReading(f"no state rule matches {shown}", ())

    def capabilities(self) -> ChargerCapabilities:
        roles = self.roles()
        extras: set[str] = {n for n in ("energy", "session_energy", "error_code", "power") if n in roles}
        if any(n in roles for n in self.IDENTITY_ROLES):
            extras.add("identity")
        if all(f"voltage_l{i}" in roles for i in range(1, self.phases + 1)):
            extras.add("voltage")
        failsafe = self.points.failsafe_current
        enable = self.points.enable
        return ChargerCapabilities(
            max_current_a=self.nameplate_a,
            min_current_a=self.control.min_current_a,
            resolution_a=self.resolution_a,
            phases=self.phases,
            has_failsafe=failsafe is not None and failsafe.writable,
            can_disable=enable is not None and enable.writable,
            can_read_setpoint=self.setpoint_readback_point is not None,
            extras=frozenset(extras),
        )

    @model_validator(mode="after")
    def _charger_rules(self) -> ChargerProfile:
        issues = self._issues()
        p = self.points
        if p.setpoint is None:
            issues.append(("points.setpoint", "a charger profile needs a setpoint point"))
        elif not p.setpoint.writable:
            issues.append(("points.setpoint.access", "the setpoint must be writable"))
        elif p.setpoint.type.is_float and p.setpoint.resolution is None:
            issues.append(("points.setpoint.resolution", "a float setpoint needs a resolution (in A)"))
        issues += self._state_issues()
        for name in ("enable", "failsafe_current", "failsafe_timeout", "heartbeat"):
            point = getattr(p, name)
            if point is not None and not point.writable:
                issues.append((f"points.{name}.access", f"{name} is written by the gateway; it must be writable"))
        if self.control.pause is PauseMethod.DISABLE and p.enable is None:
            issues.append(("control.pause", "pausing by disable needs an enable point"))
        if self.quirks.write_needs_enable and p.enable is None:
            issues.append(("quirks.write_needs_enable", "needs an enable point"))
        if self.control.min_current_a > self.max_setpoint_a:
            issues.append(("control.min_current_a", "is above the highest setpoint"))
        if self.control.max_current_a is not None and self.control.max_current_a > self.nameplate_a:
            issues.append(("control.max_current_a", f"is above nameplate_a ({self.nameplate_a:g} A)"))
        if p.setpoint is not None and p.setpoint.writable:
            issues += self._setpoint_range_issues()
        keep = self.watchdog.keep_alive
        if keep is KeepAlive.HEARTBEAT and p.heartbeat is None:
            issues.append(("watchdog.keep_alive", "heartbeat keep-alive needs a heartbeat point"))
        if keep is KeepAlive.TIMEOUT and p.failsafe_timeout is None:
            issues.append(("watchdog.keep_alive", "timeout keep-alive needs a failsafe_timeout point"))
        if p.failsafe_current is not None and keep is KeepAlive.NONE:
            issues.append(("watchdog.keep_alive", "a charger with a fail-safe current has a watchdog: say what "
                           "keeps it alive (traffic, setpoint, heartbeat or timeout)"))
        if p.failsafe_current is not None and p.failsafe_timeout is None and self.watchdog.fixed_timeout_s is None:
            issues.append(("points.failsafe_current", "the gateway must know when the fail-safe current applies: "
                           "declare failsafe_timeout or watchdog.fixed_timeout_s"))
        if p.heartbeat is not None and p.heartbeat.writable:
            try:
                self.encode("heartbeat", self.watchdog.heartbeat_value)
            except ValueError as exc:
                issues.append(("watchdog.heartbeat_value", str(exc)))
        if issues:
            raise ProfileIssues(issues)
        return self

    def _state_issues(self) -> list[tuple[str, str]]:
        issues: list[tuple[str, str]] = []
        state = self.points.state
        if state is None and not self.state_rules:
            return [("points.state", "a charger profile needs a state point or state_rules")]
        if state is not None and self.state_rules:
            return [("state_rules", "give either a state point or state_rules, not both")]
        if state is not None:
            if state.enum is None:
                issues.append(("points.state.enum", "map the raw state values to IEC 61851 letters A..F"))
            else:
                issues += [(f"points.state.enum.{key}", f"{letter!r} is not an IEC 61851 state A..F")
                           for key, letter in state.enum.items() if letter not in Iec61851State.__members__]
            if not state.readable:
                issues.append(("points.state.access", "the state must be readable"))
            return issues
        for i, rule in enumerate(self.state_rules):
            for name in rule.when:
                if not self.has(name):
                    issues.append((f"state_rules[{i}].when.{name}", f"no point named {name!r}"))
                elif not self.point(name).readable:
                    issues.append((f"state_rules[{i}].when.{name}", f"{name!r} is not readable"))
        return issues

    def _setpoint_range_issues(self) -> list[tuple[str, str]]:
        issues: list[tuple[str, str]] = []
        for current in (0.0, self.control.min_current_a, self.max_setpoint_a):
            if current == 0 and self.control.pause is PauseMethod.DISABLE:
                continue
            try:
                self.encode("setpoint", current)
            except ValueError as exc:
                issues.append(("points.setpoint", f"cannot command {current:g} A: {exc}"))
        return issues


class MeterPoints(Strict):
    current_l1: Point | None = None
    current_l2: Point | None = None
    current_l3: Point | None = None
    voltage_l1: Point | None = None
    voltage_l2: Point | None = None
    voltage_l3: Point | None = None
    power: Point | None = None
    """Total active power, import positive."""
    energy_import: Point | None = None


class MeterProfile(ProfileMeta):
    kind: Literal["meter"]
    points: MeterPoints

    ROLE_FIELDS: ClassVar[tuple[str, ...]] = tuple(MeterPoints.model_fields)
    POLL_ROLES: ClassVar[tuple[str, ...]] = ROLE_FIELDS

    def roles(self) -> dict[str, Point]:
        return {n: p for n in self.ROLE_FIELDS if (p := getattr(self.points, n)) is not None}

    @model_validator(mode="after")
    def _meter_rules(self) -> MeterProfile:
        issues = self._issues()
        if self.points.current_l1 is None:
            issues.append(("points.current_l1", "a meter profile needs at least the L1 current"))
        for name, point in self.roles().items():
            if not point.readable:
                issues.append((f"points.{name}.access", "meter points must be readable"))
        if issues:
            raise ProfileIssues(issues)
        return self


Profile = Annotated[ChargerProfile | MeterProfile, Field(discriminator="kind")]
_PROFILE_ADAPTER: TypeAdapter[ChargerProfile | MeterProfile] = TypeAdapter(Profile)


class ProfileIssues(ProfileError):
    """A profile broke cross-field rules; ``issues`` lists (key path, message) pairs."""

    def __init__(self, issues: Sequence[tuple[str, str]], source: str = "") -> None:
        self.issues = tuple(issues)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(f"{prefix}{path}: {message}" if path else f"{prefix}{message}"
                                   for path, message in self.issues))


def _loc(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; profiles/TEMPLATE.yaml lists every key)"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_profile(data: Any, source: str) -> ChargerProfile | MeterProfile:
    """Validate parsed YAML; raises ``ProfileIssues`` (a ``ProfileError``) naming ``source`` and every key path."""
    if not isinstance(data, dict):
        raise ProfileIssues([("", "a profile is a mapping (name, kind, manufacturer, points, ...)")], source)
    if data.get("kind") not in ("charger", "meter"):
        raise ProfileIssues([("kind", "must be charger or meter")], source)
    try:
        return _PROFILE_ADAPTER.validate_python(data)
    except ProfileIssues as exc:
        raise ProfileIssues(exc.issues, source) from None
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = [part for part in error["loc"] if part not in ("charger", "meter")]
            issues.append((_loc(loc), _message(error)))
        raise ProfileIssues(issues, source) from None


def load_profile(path: Path | Traversable) -> ChargerProfile | MeterProfile:
    """Read and validate one profile file; the file must be named after the profile."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileIssues([("", f"cannot read: {exc.strerror or exc}")], source) from exc
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ProfileIssues([("", f"not valid YAML: {exc}")], source) from exc
    profile = parse_profile(data, source)
    stem = path.name.rsplit(".", 1)[0]
    if stem != profile.name:
        raise ProfileIssues([("name", f"{profile.name!r} must match the file name ({stem!r})")], source)
    return profile


def _yaml_files(root: Traversable) -> Iterator[Traversable]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _yaml_files(entry)
        elif entry.name.endswith((".yaml", ".yml")) and entry.name != "TEMPLATE.yaml":
            yield entry


class ProfileRegistry:
    """Every known profile by name: the shipped ones plus any site-specific directories, no duplicates."""

    def __init__(self, profiles: Iterable[ChargerProfile | MeterProfile] = ()) -> None:
        self._profiles: dict[str, ChargerProfile | MeterProfile] = {}
        for profile in profiles:
            if profile.name in self._profiles:
                raise ProfileIssues([("name", f"duplicate profile name {profile.name!r}")])
            self._profiles[profile.name] = profile

    @classmethod
    def shipped(cls) -> ProfileRegistry:
        """The profiles installed with the package (``profiles/chargers``, ``profiles/meters``)."""
        return cls.load(())

    @classmethod
    def load(cls, dirs: Iterable[Path], include_shipped: bool = True) -> ProfileRegistry:
        """Shipped profiles plus every ``*.yaml`` under ``dirs``; a name defined twice is an error naming both."""
        roots: list[Traversable] = []
        if include_shipped:
            package = importlib.resources.files("profiles")
            roots += [package / "chargers", package / "meters"]
        roots += [Path(d) for d in dirs]
        found: dict[str, tuple[str, ChargerProfile | MeterProfile]] = {}
        errors: list[str] = []
        for root in roots:
            if not root.is_dir():
                errors.append(f"{root}: not a directory")
                continue
            for path in _yaml_files(root):
                try:
                    profile = load_profile(path)
                except ProfileError as exc:
                    errors.append(str(exc))
                    continue
                if profile.name in found:
                    errors.append(f"{path}: name: profile {profile.name!r} is already defined in "
                                  f"{found[profile.name][0]}")
                    continue
                found[profile.name] = (str(path), profile)
        if errors:
            raise ProfileError("\n".join(errors))
        return cls(p for _, p in found.values())

    def names(self, kind: Literal["charger", "meter"] | None = None) -> tuple[str, ...]:
        return tuple(sorted(n for n, p in self._profiles.items() if kind is None or p.kind == kind))

    def get(self, name: str) -> ChargerProfile | MeterProfile:
        """The profile called ``name``; ``KeyError`` if there is none."""
        return self._profiles[name]

    def charger(self, name: str) -> ChargerProfile:
        profile = self._profiles[name]
        if not isinstance(profile, ChargerProfile):
            raise KeyError(f"{name!r} is a meter profile, not a charger profile")
        return profile

    def meter(self, name: str) -> MeterProfile:
        profile = self._profiles[name]
        if not isinstance(profile, MeterProfile):
            raise KeyError(f"{name!r} is a charger profile, not a meter profile")
        return profile

    def nameplate_a(self, name: str) -> float:
        """The charger family's nameplate current; ``KeyError`` for an unknown or meter profile (for load_site)."""
        return self.charger(name).nameplate_a

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __iter__(self) -> Iterator[ChargerProfile | MeterProfile]:
        return iter(self._profiles[n] for n in self.names())

