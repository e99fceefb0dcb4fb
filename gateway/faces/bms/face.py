"""What a BMS request means, free of any Modbus transport: which registers it may touch, what they read, and
which commands a write becomes.

Everything here is synchronous and quick because it runs inside the pymodbus datastore action, which must never
await (an action that suspends makes pymodbus label answers with the wrong TCP transaction id).

Writes are all or nothing. Every value of a request is checked against the register map's ranges before the
first command is submitted; only then are the commands applied, in address order. Should the supervisor still
refuse one (its rules know more than the map, e.g. a network limit above what the chargers could draw), the
commands already applied are undone with the values they replaced, and the request fails. A write that would
not change a setting submits no command for it, because a BMS that rewrites its whole block on every poll must
not make the gateway persist the same settings over and over.

The session blocks (HR2000 + 3·i, ``gateway.faces.bms.session_block``) follow the same rules: each charger's
block a write covers becomes one command, checked by the supervisor like the web API's, and undone like the rest.

A write is visible to the next read at once, even before the supervisor publishes a new snapshot: the face
remembers what it wrote against the snapshot it saw and shows that until any newer snapshot arrives (which is
then the truth, whatever it says).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

from gateway.faces.bms.refusal import ExceptionCode, Refusal
from gateway.faces.bms.register_map import (
    HEARTBEAT,
    NETWORK_LIMIT,
    SESSION_BASE,
    SITE_SETTING_AT,
    UNIT_BLOCK_BASE,
    UNIT_BLOCK_SIZE,
    UNIT_LIMIT,
    UNIT_LIMIT_BASE,
    Heartbeat,
    SiteSetting,
    Table,
    encode,
    largest_raw,
    site_input_registers,
    unit_input_block,
)
from gateway.faces.bms.session_block import SessionChange, SessionValues, read_sessions, session_changes
from gateway.runtime.commands import BmsHeartbeat, Command, CommandRejected, GatewayControl
from gateway.runtime.read_model import SiteStatus, UnitStatus

log = logging.getLogger("gateway.faces.bms")


@dataclass(frozen=True, slots=True)
class _Change:
    key: int | str
    """The HR address of a site setting, or the id of a charger (whose index may change when one is removed)."""
    label: str
    value: float
    command: Command
    undo: Command


_HoldingTarget = SiteSetting | Heartbeat | UnitStatus


class _Snapshot:
    """One published status with its input registers, each encoded at most once and only when first read: a
    snapshot never changes, and a BMS (or several) may read it many times before the next one is published."""

    def __init__(self, status: SiteStatus) -> None:
        self.status = status
        self._blocks: dict[int, list[int]] = {}

    @cached_property
    def units(self) -> dict[int, UnitStatus]:
        return {u.index: u for u in self.status.units}

    @cached_property
    def site_inputs(self) -> dict[int, int]:
        return site_input_registers(self.status)

    def block(self, index: int) -> list[int] | None:
        if (block := self._blocks.get(index)) is None and (unit := self.units.get(index)) is not None:
            block = self._blocks[index] = unit_input_block(unit)
        return block


class BmsFace:
    """The register map served over the read model and the command interface of one running gateway."""

    def __init__(self, control: GatewayControl) -> None:
        self._control = control
        self._heartbeat_value = 0
        self._written: dict[int | str, float] = {}
        self._sessions_written: dict[str, SessionValues] = {}
        self._written_against: SiteStatus | None = None
        self._snapshot: _Snapshot | None = None

    def read(self, table: Table, address: int, count: int) -> list[int] | Refusal:
        snapshot = self._current()
        if table is Table.INPUT:
            return _read_input(snapshot, address, count)
        if address >= SESSION_BASE:
            return read_sessions(snapshot.units, self._sessions_written, address, count)
        status = snapshot.status
        registers: list[int] = []
        for a in range(address, address + count):
            target = _holding_target(snapshot, a)
            if target is None:
                return Refusal(ExceptionCode.ILLEGAL_ADDRESS, f"HR{a} is not defined")
            if isinstance(target, Heartbeat):
                registers.append(self._heartbeat_value)
            elif isinstance(target, SiteSetting):
                registers.append(encode(self._written.get(a, target.read(status)), target.scale)[0])
            else:
                registers.append(encode(self._written.get(target.id, UNIT_LIMIT.read(target)), UNIT_LIMIT.scale)[0])
        return registers

    def write(self, address: int, values: Sequence[int], origin: str) -> Refusal | None:
        """Apply a write of ``values`` from HR``address`` on, entirely or not at all."""
        snapshot = self._current()
        if address >= SESSION_BASE:
            return self._write_sessions(snapshot, address, values, origin)
        status = snapshot.status
        changes: list[_Change] = []
        heartbeat = False
        for a, raw in enumerate(values, start=address):
            target = _holding_target(snapshot, a)
            if target is None:
                return Refusal(ExceptionCode.ILLEGAL_ADDRESS, f"HR{a} is not defined")
            if isinstance(target, Heartbeat):
                heartbeat = True
                continue
            if isinstance(target, SiteSetting):
                key: int | str = a
                name, scale = target.name, target.scale
                maximum, old = target.maximum(status), self._written.get(a, target.read(status))
                make: Callable[[float], Command] = target.command
            else:
                unit = target
                key, name, scale = unit.id, f"{UNIT_LIMIT.name} {unit.id}", UNIT_LIMIT.scale
                maximum, old = UNIT_LIMIT.maximum(unit), self._written.get(unit.id, UNIT_LIMIT.read(unit))
                make = partial(UNIT_LIMIT.command, unit)
            top = largest_raw(maximum, scale)
            if raw > top:
                return Refusal(ExceptionCode.ILLEGAL_VALUE, f"HR{a} ({name}): {raw} is above the largest "
                                                            f"allowed value {top}")
            heartbeat = heartbeat or target is NETWORK_LIMIT
            if encode(old, scale)[0] == raw:
                continue
            value = raw / scale
            changes.append(_Change(key, f"HR{a} {name}={raw}", value, make(value), make(old)))

        refusal = self._apply(changes, heartbeat, origin)
        if refusal is not None:
            return refusal
        if HEARTBEAT.address in range(address, address + len(values)):
            self._heartbeat_value = values[HEARTBEAT.address - address]
        if changes:
            self._written_against = status
            self._written.update((c.key, c.value) for c in changes)
            log.info("%s wrote %s", origin, ", ".join(c.label for c in changes))
        else:
            log.debug("%s wrote HR%d..HR%d: no setting changed%s", origin, address, address + len(values) - 1,
                      " (heartbeat)" if heartbeat else "")
        return None

    def _write_sessions(self, snapshot: _Snapshot, address: int, values: Sequence[int],
                        origin: str) -> Refusal | None:
        """A write to session blocks (``gateway.faces.bms.session_block``): all or nothing, like any other."""
        changes = session_changes(snapshot.units, self._sessions_written, address, values)
        if isinstance(changes, Refusal):
            return changes
        refusal = self._apply(changes, False, origin)
        if refusal is not None:
            return refusal
        if changes:
            self._written_against = snapshot.status
            self._sessions_written.update((c.charger_id, c.values) for c in changes)
            log.info("%s wrote %s", origin, "; ".join(c.label for c in changes))
        return None

    def _apply(self, changes: Sequence[_Change | SessionChange], heartbeat: bool, origin: str) -> Refusal | None:
        done: list[_Change | SessionChange] = []
        try:
            for change in changes:
                self._control.apply(change.command, origin)
                done.append(change)
            if heartbeat:
                # After the settings: a heartbeat ends a fallback, and it should end into the new limit.
                self._control.apply(BmsHeartbeat(), origin)
        except CommandRejected as exc:
            self._undo(done, origin)
            return Refusal(ExceptionCode.ILLEGAL_VALUE, str(exc))
        except Exception:
            self._undo(done, origin)
            log.exception("%s: write failed", origin)
            return Refusal(ExceptionCode.DEVICE_FAILURE, "the gateway could not apply the write")
        return None

    def _undo(self, done: list[_Change | SessionChange], origin: str) -> None:
        for change in reversed(done):
            try:
                self._control.apply(change.undo, f"{origin} (undo)")
            except Exception:
                log.exception("%s: could not undo %s", origin, change.label)

    def _current(self) -> _Snapshot:
        status = self._control.status()
        if status is not self._written_against:
            self._written.clear()
            self._sessions_written.clear()
            self._written_against = None
        if self._snapshot is None or self._snapshot.status is not status:
            self._snapshot = _Snapshot(status)
        return self._snapshot


def _read_input(snapshot: _Snapshot, address: int, count: int) -> list[int] | Refusal:
    if address < UNIT_BLOCK_BASE:
        # The site registers end well before the first charger block, so a range starting here ends here too.
        missing = next((a for a in range(address, address + count) if a not in snapshot.site_inputs), None)
        if missing is not None:
            return Refusal(ExceptionCode.ILLEGAL_ADDRESS, f"IR{missing} is not defined")
        return [snapshot.site_inputs[a] for a in range(address, address + count)]
    registers: list[int] = []
    first, last = address - UNIT_BLOCK_BASE, address - UNIT_BLOCK_BASE + count - 1
    for index in range(first // UNIT_BLOCK_SIZE, last // UNIT_BLOCK_SIZE + 1):
        block = snapshot.block(index)
        if block is None:
            return Refusal(ExceptionCode.ILLEGAL_ADDRESS, f"IR{UNIT_BLOCK_BASE + UNIT_BLOCK_SIZE * index}…: there "
                                                          f"is no charger {index}")
        base = index * UNIT_BLOCK_SIZE
        registers += block[max(first - base, 0):min(last - base, UNIT_BLOCK_SIZE - 1) + 1]
    return registers


def _holding_target(snapshot: _Snapshot, address: int) -> _HoldingTarget | None:
    if address == HEARTBEAT.address:
        return HEARTBEAT
    if (setting := SITE_SETTING_AT.get(address)) is not None:
        return setting
    if address >= UNIT_LIMIT_BASE:
        return snapshot.units.get(address - UNIT_LIMIT_BASE)
    return None
