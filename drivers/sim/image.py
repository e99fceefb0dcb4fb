"""A profile's register map turned inside out: engineering values in, the registers a real device would serve out.

The simulator serves *any* profile, so it must encode exactly what the profile says the device encodes (type,
word order, byte swap, scale, masks, enum maps in reverse) and decode writes the way the device would refuse them.
This module is that inversion, pure and synchronous (it runs inside the pymodbus action).

It also makes garbage on demand: for each point whose profile declares what is believable (a valid range, an enum,
a "not available" marker, or a float), a raw value the codec must flag as invalid: NaN, 0xFFFF, an unknown enum
value. Points with no such rule (an error code, a string) keep their real value, because nothing could tell.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from drivers.codec import DataType, Format, InvalidReading, Value, decode, encode, encode_raw
from drivers.profile import ProfileMeta, Table
from drivers.sim.server import Span
from drivers.sim.server import Table as TableName

REGISTER_ALL_ONES = 0xFFFF
_UNSIGNED = {1: DataType.U16, 2: DataType.U32, 4: DataType.U64}
ILLEGAL_FUNCTION = 1
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3


class ProfileImage:
    """The points of ``profile`` served by one unit id (``device_id`` None: the unit's own points)."""

    def __init__(self, profile: ProfileMeta, device_id: int | None = None) -> None:
        self.profile = profile
        self.points = {n: p for n, p in profile.all_points().items() if p.device_id == device_id}
        self.formats: dict[str, Format] = {n: profile.format_of(n) for n in self.points}
        self._garbage: dict[str, list[int] | None] = {n: _garbage_for(self.formats[n]) for n in self.points}

    def spans(self) -> dict[TableName, list[Span]]:
        """Contiguous runs of points with the same writability; holes the profile lets reads span read as 0."""
        gap = self.profile.quirks.max_gap_registers
        out: dict[TableName, list[Span]] = {}
        for table in Table:
            members = sorted((p for p in self.points.values() if p.table is table), key=lambda p: p.address)
            spans: list[Span] = []
            for point in members:
                last = spans[-1] if spans else None
                end = last.address + last.count if last else -1
                if last and point.address <= end and last.writable == point.writable:
                    spans[-1] = Span(last.address, max(end, point.end) - last.address, last.writable)
                elif last and point.address <= end:  # overlapping points of different access: one writable span
                    spans[-1] = Span(last.address, max(end, point.end) - last.address, True)
                elif last and point.address - end <= gap and last.writable == point.writable:
                    spans[-1] = Span(last.address, point.end - last.address, last.writable)
                else:
                    spans.append(Span(point.address, point.end - point.address, point.writable))
            if spans:
                out[table.value] = spans
        return out

    def read(self, table: TableName, address: int, count: int, values: Mapping[str, Value], *,
             garbage: bool = False) -> list[int]:
        """The words of ``table`` at ``address``..+count, with every point encoded from ``values``."""
        words = [0] * count
        for name, point in self.points.items():
            if point.table.value != table or point.end <= address or point.address >= address + count:
                continue
            encoded = self._garbage[name] if garbage else None
            if encoded is None:
                encoded = self.encode(name, values.get(name))
            for i, word in enumerate(encoded):
                at = point.address + i - address
                if 0 <= at < count:
                    words[at] |= word  # points that share a register (bit fields) are OR-ed together
        return words

    def encode(self, name: str, value: Value | None) -> list[int]:
        """Registers for ``value``; a value the point cannot hold is clamped into its valid range, never refused:
        a device always answers something."""
        fmt = self.formats[name]
        if value is None:
            return [0] * fmt.register_count
        try:
            return encode(value, fmt)
        except ValueError:
            pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low = fmt.valid_min if fmt.valid_min is not None else value
            high = fmt.valid_max if fmt.valid_max is not None else value
            try:
                return encode(min(max(float(value), low), high), fmt)
            except ValueError:
                pass
            if fmt.type.is_integer and fmt.mask is None:
                # A counter too big for its register wraps around, as a device's 16-bit energy counter does.
                raw = round((float(value) - fmt.offset) / fmt.scale) % (1 << (16 * fmt.register_count))
                try:
                    return encode_raw(raw, replace(fmt, type=_UNSIGNED[fmt.register_count]))
                except (ValueError, KeyError):
                    pass
        return [0] * fmt.register_count

    def decode_write(self, table: TableName, address: int, words: Sequence[int],
                     function_code: int) -> dict[str, Value] | int:
        """The engineering values a write sets, or the Modbus exception code a strict device would answer."""
        end = address + len(words)
        written: dict[str, Value] = {}
        for name, point in self.points.items():
            if point.table.value != table or point.end <= address or point.address >= end:
                continue
            if point.address < address or point.end > end:
                return ILLEGAL_VALUE  # a multi-register value must be written whole, in one request
            if not point.writable:
                return ILLEGAL_ADDRESS
            if point.write_fc != function_code:
                return ILLEGAL_FUNCTION  # the profile says which function code the device accepts
            value = decode(words[point.address - address:point.end - address], self.formats[name])
            if isinstance(value, InvalidReading):
                return ILLEGAL_VALUE
            written[name] = value
        if not written:
            return ILLEGAL_ADDRESS
        return written


def _garbage_for(fmt: Format) -> list[int] | None:
    """Registers that decode as invalid under ``fmt``, or None if this point cannot be caught lying."""
    count = fmt.register_count
    if fmt.type is DataType.BOOL or fmt.type.is_text:
        return None
    candidates: list[list[int]] = [[REGISTER_ALL_ONES] * count]  # NaN for floats, "not available", 6553.5 A
    if fmt.type.is_integer:
        candidates += [_raw(raw, fmt) for raw in _unknown_enum_keys(fmt)]
        bits = 16 * count
        signed = fmt.type in (DataType.S16, DataType.S32, DataType.S64)
        extremes = (2 ** (bits - 1) - 1, -(2 ** (bits - 1))) if signed else (2 ** bits - 1, 0)
        candidates += [_raw(raw, fmt) for raw in extremes]  # in the point's own word order
    for words in candidates:
        if len(words) == count and isinstance(decode(words, fmt), InvalidReading):
            return words
    return None


def _unknown_enum_keys(fmt: Format) -> Iterable[int]:
    if fmt.enum is None:
        return ()
    known = {k for k in fmt.enum if isinstance(k, int)}
    return itertools.islice((k for k in itertools.count() if k not in known), 1)


def _raw(raw: int, fmt: Format) -> list[int]:
    try:
        return encode_raw(raw, fmt)
    except ValueError:
        return []
