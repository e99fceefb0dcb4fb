"""The session block of each charger (HR2000 + 3·i): when its car leaves and how much energy it wants.

A write becomes the same ``SetSessionNeed`` the web API sends, one per charger the write covers, so the supervisor
checks it by the same rule (a departure in the future and at most 7 days ahead, energy more than 0 and at most
1000 kWh) and refuses it the same way. A register the write does not cover keeps what the session has: a BMS may
set the energy alone and leave the departure, or the reverse. The departure is one 32-bit value; a write that
covers only one of its two registers would set a time nobody meant, so it is refused whole (exception 2, like
any range that does not fit the map). Reads show what was set for the session, by the BMS or by the web page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.faces.bms.refusal import ExceptionCode, Refusal
from gateway.faces.bms.register_map import (
    DEPARTURE,
    ENERGY_WANTED,
    SESSION_BASE,
    SESSION_BLOCK_SIZE,
    decode,
    session_command,
    session_registers,
)
from gateway.runtime.commands import SetSessionNeed
from gateway.runtime.read_model import UnitStatus

SessionValues = tuple[float | None, float | None]
"""A session's departure (UNIX seconds) and energy wanted (kWh); None where nothing was said."""


@dataclass(frozen=True, slots=True)
class SessionChange:
    """One charger's session as a write leaves it, the command that sets it, and the one that puts it back."""

    charger_id: str
    label: str
    values: SessionValues
    command: SetSessionNeed
    undo: SetSessionNeed


def values_of(unit: UnitStatus, written: Mapping[str, SessionValues]) -> SessionValues:
    """What the session at ``unit`` has: the face's own write not yet published, or the snapshot's."""
    return written.get(unit.id, (unit.departure_s, unit.energy_wanted_kwh))


def read_sessions(units: Mapping[int, UnitStatus], written: Mapping[str, SessionValues], address: int,
                  count: int) -> list[int] | Refusal:
    """``count`` registers from HR``address`` (at least ``SESSION_BASE``)."""
    first = address - SESSION_BASE
    last = first + count - 1
    registers: list[int] = []
    for index in range(first // SESSION_BLOCK_SIZE, last // SESSION_BLOCK_SIZE + 1):
        unit = units.get(index)
        if unit is None:
            return _no_charger(index)
        base = index * SESSION_BLOCK_SIZE
        block = session_registers(*values_of(unit, written))
        registers += block[max(first - base, 0):min(last - base, SESSION_BLOCK_SIZE - 1) + 1]
    return registers


def session_changes(units: Mapping[int, UnitStatus], written: Mapping[str, SessionValues], address: int,
                    values: Sequence[int]) -> list[SessionChange] | Refusal:
    """The sessions a write of ``values`` from HR``address`` changes (none if it repeats what they have)."""
    first = address - SESSION_BASE
    last = first + len(values) - 1
    start, end = DEPARTURE.offset, DEPARTURE.offset + DEPARTURE.words - 1
    if first % SESSION_BLOCK_SIZE == end or last % SESSION_BLOCK_SIZE == start:
        return Refusal(ExceptionCode.ILLEGAL_ADDRESS, f"HR{address}..HR{address + len(values) - 1}: the departure's "
                                                      "two registers must be written together")
    changes: list[SessionChange] = []
    for index in range(first // SESSION_BLOCK_SIZE, last // SESSION_BLOCK_SIZE + 1):
        unit = units.get(index)
        if unit is None:
            return _no_charger(index)
        base = index * SESSION_BLOCK_SIZE

        def covered(offset: int, base: int = base) -> int | None:
            """The position in ``values`` of the block's register ``offset``, if the write covers it."""
            return base + offset - first if first <= base + offset <= last else None

        old = values_of(unit, written)
        departure, energy = old
        if (at := covered(start)) is not None:
            departure = decode(list(values[at:at + DEPARTURE.words]), DEPARTURE.scale)
        if (at := covered(ENERGY_WANTED.offset)) is not None:
            energy = decode([values[at]], ENERGY_WANTED.scale)
        if session_registers(departure, energy) == session_registers(*old):
            continue
        command = session_command(unit, departure, energy)
        label = (f"HR{SESSION_BASE + base} session {unit.id}: departure="
                 f"{command.departure.isoformat() if command.departure else 'none'}, "
                 f"energy={'none' if energy is None else f'{energy:g} kWh'}")
        changes.append(SessionChange(unit.id, label, (departure, energy), command, session_command(unit, *old)))
    return changes


def _no_charger(index: int) -> Refusal:
    return Refusal(ExceptionCode.ILLEGAL_ADDRESS,
                   f"HR{SESSION_BASE + SESSION_BLOCK_SIZE * index}…: there is no charger {index}")
