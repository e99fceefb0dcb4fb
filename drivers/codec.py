"""Typed values to and from 16-bit Modbus registers, with the scaling and sanity checks of one register-map point.

Pure and synchronous: no I/O, no pymodbus. A ``Format`` describes how one point is stored (type, word order, byte
swap, scale, offset, bit mask, enum map, valid range). ``decode`` turns the registers a device returned into an
engineering value, or into an ``InvalidReading`` when the device sent nonsense (NaN, a "not available" marker such
as 0xFFFF, 6553.5 A, an enum value the profile does not know): a poll must be able to report such a point as
invalid without raising. ``encode`` turns an engineering value into the registers to write and raises
``ValueError`` when the value cannot be represented, because a write the device would misread must never be sent.

Conventions (the ones the register-map research uses):

* Within a register the high byte comes first on the wire; ``byte_swap`` swaps the two bytes of every register.
* ``word_order`` "big" puts the most significant register first (ABCD); "little" the least significant (CDAB).
* engineering value = raw × scale + offset; a mask selects bits and shifts them down to bit 0 before scaling.
* "string" packs two ASCII characters per register, "utf16" one character per register (UTF-16BE code unit).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

REGISTER_MAX = 0xFFFF


class DataType(StrEnum):
    BOOL = "bool"
    """One bit: a coil or a discrete input."""
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"
    """Two 8-bit characters per register, NUL padded."""
    UTF16 = "utf16"
    """One character per register (UTF-16BE code unit), NUL padded."""

    @property
    def fixed_count(self) -> int | None:
        """Registers this type occupies, or None for strings (their length is declared per point)."""
        return _FIXED_COUNT.get(self)

    @property
    def is_float(self) -> bool:
        return self in (DataType.F32, DataType.F64)

    @property
    def is_integer(self) -> bool:
        return self in _INT_RANGE

    @property
    def is_text(self) -> bool:
        return self in (DataType.STRING, DataType.UTF16)


_FIXED_COUNT = {
    DataType.BOOL: 1, DataType.U16: 1, DataType.S16: 1, DataType.U32: 2, DataType.S32: 2,
    DataType.U64: 4, DataType.S64: 4, DataType.F32: 2, DataType.F64: 4,
}
_INT_RANGE = {
    DataType.U16: (0, 2**16 - 1), DataType.S16: (-(2**15), 2**15 - 1),
    DataType.U32: (0, 2**32 - 1), DataType.S32: (-(2**31), 2**31 - 1),
    DataType.U64: (0, 2**64 - 1), DataType.S64: (-(2**63), 2**63 - 1),
}
_STRUCT = {
    DataType.U16: ">H", DataType.S16: ">h", DataType.U32: ">I", DataType.S32: ">i",
    DataType.U64: ">Q", DataType.S64: ">q", DataType.F32: ">f", DataType.F64: ">d",
}


class WordOrder(StrEnum):
    BIG = "big"
    """Most significant register first (ABCD)."""
    LITTLE = "little"
    """Least significant register first (CDAB)."""


Value = bool | int | float | str
"""A decoded engineering value: a flag, a number in the point's unit, an enum name, or text."""
EnumKey = int | str


@dataclass(frozen=True, slots=True)
class InvalidReading:
    """A point whose raw value makes no sense; the driver lists it in ``ChargerReading.invalid``."""

    reason: str
    raw: tuple[int, ...]

    def __str__(self) -> str:
        words = " ".join(f"0x{r:04X}" for r in self.raw)
        return f"{self.reason} (raw {words})"


Decoded = Value | InvalidReading


@dataclass(frozen=True, slots=True)
class Format:
    """How one point is stored in its registers and what values of it are believable."""

    type: DataType = DataType.U16
    count: int | None = None
    """Registers occupied; required for strings, otherwise implied by ``type``."""
    word_order: WordOrder = WordOrder.BIG
    byte_swap: bool = False
    scale: float = 1.0
    offset: float = 0.0
    mask: int | None = None
    """Bits of the raw integer that hold this point; they are shifted down to bit 0."""
    valid_min: float | None = None
    valid_max: float | None = None
    """Engineering values outside [valid_min, valid_max] are invalid readings (and refused on encode)."""
    invalid_raw: frozenset[int] = frozenset()
    """Raw integers (before mask and scale) that mean "not available", e.g. 0xFFFF."""
    enum: Mapping[EnumKey, str] | None = field(default=None, hash=False)
    """Raw value (or text) -> name. A raw value not in the map is an invalid reading."""
    resolution: float | None = None
    """Step of the engineering value on writes; defaults to ``scale`` for integer types."""

    def __post_init__(self) -> None:
        fixed = self.type.fixed_count
        if fixed is None and (self.count is None or self.count < 1):
            raise ValueError(f"a {self.type} needs a register count of at least 1")
        if fixed is not None and self.count is not None and self.count != fixed:
            raise ValueError(f"a {self.type} occupies {fixed} register(s), not {self.count}")
        if self.scale == 0 or not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError("scale must be finite and non-zero, offset finite")
        if self.mask is not None and not (self.type.is_integer and self.mask > 0):
            raise ValueError("a mask needs an integer type and a non-zero value")

    @property
    def register_count(self) -> int:
        fixed = self.type.fixed_count
        return fixed if fixed is not None else int(self.count or 0)

    @property
    def step(self) -> float | None:
        """The resolution writes are rounded to (None: floats without a declared resolution are not rounded)."""
        if self.resolution is not None:
            return self.resolution
        return abs(self.scale) if self.type.is_integer else None


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def _to_bytes(registers: Sequence[int], fmt: Format) -> bytes:
    words = list(registers)
    if fmt.byte_swap:
        words = _swap_bytes(words)
    if fmt.word_order is WordOrder.LITTLE and not fmt.type.is_text:
        words.reverse()
    return b"".join(w.to_bytes(2, "big") for w in words)


def _from_bytes(data: bytes, fmt: Format) -> list[int]:
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if fmt.word_order is WordOrder.LITTLE and not fmt.type.is_text:
        words.reverse()
    if fmt.byte_swap:
        words = _swap_bytes(words)
    return words


def raw_value(registers: Sequence[int], fmt: Format) -> int | float | str | bool:
    """The value stored in the registers before mask, scale and checks (an int, a float or text)."""
    if len(registers) != fmt.register_count:
        raise ValueError(f"a {fmt.type} point needs {fmt.register_count} register(s), got {len(registers)}")
    if any(not 0 <= r <= REGISTER_MAX for r in registers):
        raise ValueError("register values must be 0..65535")
    if fmt.type is DataType.BOOL:
        return bool(registers[0])
    if fmt.type is DataType.UTF16:
        words = _swap_bytes(registers) if fmt.byte_swap else list(registers)
        text = b"".join(w.to_bytes(2, "big") for w in words).decode("utf-16-be", errors="replace")
        return text.split("\x00", 1)[0].strip()
    data = _to_bytes(registers, fmt)
    if fmt.type is DataType.STRING:
        return data.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
    value: int | float = struct.unpack(_STRUCT[fmt.type], data)[0]
    return value


def _unsigned(registers: Sequence[int], fmt: Format) -> int:
    """The registers as one unsigned integer in the point's word order, for "not available" markers."""
    return int.from_bytes(_to_bytes(registers, fmt), "big")


def decode(registers: Sequence[int], fmt: Format) -> Decoded:
    """Registers as read from the device -> engineering value, or ``InvalidReading`` for nonsense.

    Raises ``ValueError`` only for a wrong number of registers (a bug or protocol error, not a device value).
    """
    raw = raw_value(registers, fmt)
    words = tuple(registers)
    if isinstance(raw, bool):
        return _lookup(int(raw), fmt, words) if fmt.enum is not None else raw
    if isinstance(raw, str):
        return _lookup(raw, fmt, words) if fmt.enum is not None else raw
    if fmt.invalid_raw and _unsigned(registers, fmt) in fmt.invalid_raw:
        return InvalidReading("not available", words)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return InvalidReading("not a number", words)
    elif fmt.mask is not None:
        raw = (raw & fmt.mask) >> _shift(fmt.mask)
    if fmt.enum is not None:
        return _lookup(int(raw) if isinstance(raw, int) else raw, fmt, words)
    value = raw * fmt.scale + fmt.offset if (fmt.scale != 1 or fmt.offset != 0) else raw
    if (fmt.valid_min is not None and value < fmt.valid_min) or (fmt.valid_max is not None and value > fmt.valid_max):
        return InvalidReading(f"{value:g} outside the valid range {_range_text(fmt)}", words)
    return value


def _lookup(key: EnumKey | float, fmt: Format, words: tuple[int, ...]) -> Decoded:
    assert fmt.enum is not None
    if isinstance(key, float) or key not in fmt.enum:
        return InvalidReading(f"unknown value {key!r}", words)
    return fmt.enum[key]


def _shift(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _range_text(fmt: Format) -> str:
    low = "-inf" if fmt.valid_min is None else f"{fmt.valid_min:g}"
    high = "inf" if fmt.valid_max is None else f"{fmt.valid_max:g}"
    return f"[{low}, {high}]"


def quantize(value: float, fmt: Format) -> float:
    """The engineering value a write of ``value`` will actually command (rounded to the point's resolution)."""
    step = fmt.step
    if step is None:
        return value
    return round((value - fmt.offset) / step) * step + fmt.offset


def encode(value: Value, fmt: Format) -> list[int]:
    """Engineering value -> registers to write. Raises ``ValueError`` if the value does not fit the point."""
    if fmt.enum is not None and isinstance(value, str):
        keys = [k for k, name in fmt.enum.items() if name == value]
        if not keys:
            raise ValueError(f"{value!r} is not one of {sorted(set(fmt.enum.values()))}")
        return encode_raw(keys[0], fmt)
    if fmt.type.is_text:
        if not isinstance(value, str):
            raise ValueError(f"a {fmt.type} point takes text, not {value!r}")
        return encode_raw(value, fmt)
    if isinstance(value, str):
        raise ValueError(f"a {fmt.type} point takes a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if (fmt.valid_min is not None and number < fmt.valid_min) or (fmt.valid_max is not None and number > fmt.valid_max):
        raise ValueError(f"{number:g} is outside the valid range {_range_text(fmt)}")
    if fmt.type is DataType.BOOL:
        return [1 if number else 0]
    if isinstance(value, int) and fmt.type.is_integer and _is_identity(fmt):
        return encode_raw(value, fmt)  # exact: a 64-bit counter must not pass through a float
    raw = (quantize(number, fmt) - fmt.offset) / fmt.scale
    if fmt.type.is_float:
        return encode_raw(raw, fmt)
    return encode_raw(round(raw), fmt)


def _is_identity(fmt: Format) -> bool:
    return fmt.scale == 1 and fmt.offset == 0 and fmt.resolution in (None, 1)


def encode_raw(raw: int | float | str, fmt: Format) -> list[int]:
    """A raw value (before scale) -> registers; with a mask, the other bits are written as 0."""
    count = fmt.register_count
    if fmt.type is DataType.BOOL:
        return [1 if raw else 0]
    if fmt.type.is_text:
        text = str(raw)
        try:
            data = text.encode("ascii" if fmt.type is DataType.STRING else "utf-16-be")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{text!r} cannot be stored as {fmt.type}") from exc
        if len(data) > 2 * count:
            raise ValueError(f"{text!r} is longer than {count} register(s)")
        words = [int.from_bytes(data.ljust(2 * count, b"\x00")[i:i + 2], "big") for i in range(0, 2 * count, 2)]
        return _swap_bytes(words) if fmt.byte_swap else words
    if isinstance(raw, str):
        raise ValueError(f"a {fmt.type} point takes a number, not {raw!r}")
    if fmt.type.is_float:
        try:
            data = struct.pack(_STRUCT[fmt.type], float(raw))
        except OverflowError as exc:
            raise ValueError(f"{raw!r} does not fit a {fmt.type}") from exc
        if not math.isfinite(struct.unpack(_STRUCT[fmt.type], data)[0]):
            raise ValueError(f"{raw!r} does not fit a {fmt.type}")
        return _from_bytes(data, fmt)
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(f"{raw!r} is not a whole number")
    integer = int(raw)
    if fmt.mask is not None:
        shifted = integer << _shift(fmt.mask)
        if integer < 0 or shifted & ~fmt.mask:
            raise ValueError(f"{integer} does not fit the bit field 0x{fmt.mask:X}")
        integer = shifted
    low, high = _INT_RANGE[fmt.type]
    if not low <= integer <= high:
        raise ValueError(f"{integer} does not fit a {fmt.type} ({low}..{high})")
    return _from_bytes(struct.pack(_STRUCT[fmt.type], integer), fmt)
