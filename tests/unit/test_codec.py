"""The register codec: every type and word order round-trips, and nonsense from a device is recognised."""

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import (
    DataType,
    Format,
    InvalidReading,
    WordOrder,
    decode,
    encode,
    encode_raw,
    quantize,
    raw_value,
)

INT_TYPES = {
    DataType.U16: (0, 2**16 - 1), DataType.S16: (-(2**15), 2**15 - 1),
    DataType.U32: (0, 2**32 - 1), DataType.S32: (-(2**31), 2**31 - 1),
    DataType.U64: (0, 2**64 - 1), DataType.S64: (-(2**63), 2**63 - 1),
}
orders = st.sampled_from(list(WordOrder))
swaps = st.booleans()


@st.composite
def int_cases(draw: st.DrawFn) -> tuple[Format, int]:
    dtype = draw(st.sampled_from(list(INT_TYPES)))
    low, high = INT_TYPES[dtype]
    fmt = Format(type=dtype, word_order=draw(orders), byte_swap=draw(swaps))
    return fmt, draw(st.integers(low, high))


@given(int_cases())
def test_integers_round_trip_in_every_word_order(case: tuple[Format, int]) -> None:
    fmt, value = case
    registers = encode(value, fmt)
    assert len(registers) == fmt.register_count
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(registers, fmt) == value


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), orders, swaps)
def test_f32_round_trips_exactly(value: float, order: WordOrder, swap: bool) -> None:
    fmt = Format(type=DataType.F32, word_order=order, byte_swap=swap)
    assert decode(encode(value, fmt), fmt) == value


@given(st.floats(allow_nan=False, allow_infinity=False), orders, swaps)
def test_f64_round_trips_exactly(value: float, order: WordOrder, swap: bool) -> None:
    fmt = Format(type=DataType.F64, word_order=order, byte_swap=swap)
    assert decode(encode(value, fmt), fmt) == value


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20), swaps,
       st.sampled_from([DataType.STRING, DataType.UTF16]))
def test_strings_round_trip(text: str, swap: bool, dtype: DataType) -> None:
    fmt = Format(type=dtype, count=20, byte_swap=swap)
    assert decode(encode(text, fmt), fmt) == text


@given(st.integers(0, 65535).map(lambda raw: raw * 0.1), orders)
def test_scaled_values_round_trip_to_their_resolution(current: float, order: WordOrder) -> None:
    fmt = Format(type=DataType.U32, word_order=order, scale=0.1)
    decoded = decode(encode(current, fmt), fmt)
    assert isinstance(decoded, float)
    assert math.isclose(decoded, current, abs_tol=1e-9)


def test_word_order_and_byte_swap_follow_the_device_conventions() -> None:
    big = Format(type=DataType.F32)
    assert encode(230.5, big) == [0x4366, 0x8000]
    assert encode(230.5, Format(type=DataType.F32, word_order=WordOrder.LITTLE)) == [0x8000, 0x4366]
    assert encode(230.5, Format(type=DataType.F32, byte_swap=True)) == [0x6643, 0x0080]
    assert encode(123456789, Format(type=DataType.U32)) == [0x075B, 0xCD15]
    assert encode(1, Format(type=DataType.U64, word_order=WordOrder.LITTLE)) == [1, 0, 0, 0]
    assert decode([0x4332], Format(type=DataType.STRING, count=1)) == "C2"
    assert decode([0x0043, 0x0032], Format(type=DataType.UTF16, count=2)) == "C2"


def test_writes_are_rounded_to_the_resolution() -> None:
    tenths = Format(type=DataType.U16, scale=0.1)
    assert encode(16.04, tenths) == [160]
    assert encode(16.06, tenths) == [161]
    assert encode(7.5, Format(type=DataType.U32, scale=0.001)) == [0, 7500]
    whole_amps_float = Format(type=DataType.F32, resolution=1.0)
    assert decode(encode(13.4, whole_amps_float), whole_amps_float) == 13.0
    assert quantize(13.4, whole_amps_float) == 13.0
    assert quantize(13.4, Format(type=DataType.F32)) == 13.4


@pytest.mark.parametrize(("value", "fmt"), [
    (70000, Format(type=DataType.U16)),
    (-1, Format(type=DataType.U32)),
    (6553.6, Format(type=DataType.U16, scale=0.1)),
    (1e39, Format(type=DataType.F32)),
    (math.nan, Format(type=DataType.F32)),
    (math.inf, Format(type=DataType.U16)),
    (33, Format(type=DataType.U16, valid_min=0, valid_max=32)),
    ("abc", Format(type=DataType.U16)),
    (5, Format(type=DataType.STRING, count=2)),
    ("too long", Format(type=DataType.STRING, count=2)),
    ("Ω", Format(type=DataType.STRING, count=2)),
    ("X", Format(type=DataType.U16, enum={0: "A", 1: "B"})),
])
def test_values_that_do_not_fit_are_refused_with_value_error(value: object, fmt: Format) -> None:
    with pytest.raises(ValueError):
        encode(value, fmt)  # type: ignore[arg-type]


def test_not_available_markers_and_out_of_range_values_are_invalid_readings() -> None:
    deci_amps = Format(type=DataType.U16, scale=0.1, valid_min=0, valid_max=80)
    bad = decode([0xFFFF], deci_amps)
    assert isinstance(bad, InvalidReading)
    assert "6553.5 outside the valid range [0, 80]" in str(bad) and "0xFFFF" in str(bad)
    assert decode([160], deci_amps) == pytest.approx(16.0)
    marker = Format(type=DataType.U32, invalid_raw=frozenset({0xFFFFFFFF}))
    assert decode([0xFFFF, 0xFFFF], marker) == InvalidReading("not available", (0xFFFF, 0xFFFF))
    assert decode([0, 5], marker) == 5
    signed = Format(type=DataType.S32, scale=0.001, valid_min=0)
    assert isinstance(decode(encode_raw(-1, signed), signed), InvalidReading)


@pytest.mark.parametrize("bits", [0x7FC00000, 0x7F800000, 0xFF800000])
def test_nan_and_infinite_floats_are_invalid_readings(bits: int) -> None:
    fmt = Format(type=DataType.F32)
    decoded = decode([bits >> 16, bits & 0xFFFF], fmt)
    assert isinstance(decoded, InvalidReading) and decoded.reason == "not a number"


def test_enums_map_known_values_and_flag_unknown_ones() -> None:
    fmt = Format(type=DataType.U16, enum={2: "A", 3: "A", 6: "C"})
    assert decode([6], fmt) == "C"
    unknown = decode([42], fmt)
    assert isinstance(unknown, InvalidReading) and "unknown value 42" in unknown.reason
    assert encode("C", fmt) == [6]
    text = Format(type=DataType.STRING, count=5, enum={"A": "A", "B1": "B", "C2": "C"})
    assert decode(encode_raw("B1", text), text) == "B"
    assert isinstance(decode(encode_raw("X9", text), text), InvalidReading)


def test_bit_fields_are_masked_and_shifted() -> None:
    # ABB Terra AC 0x400C: the state sits in bits 0-6 of the third byte of a big-endian u32.
    state = Format(type=DataType.U32, mask=0x7F00, enum={0: "A", 1: "B", 4: "C"})
    assert decode([0x0000, 0x8400], state) == "C"
    assert decode([0x0000, 0x0100], state) == "B"
    flag = Format(type=DataType.U16, mask=0x0004)
    assert decode([0x0007], flag) == 1
    assert decode([0x0003], flag) == 0
    assert encode_raw(1, flag) == [0x0004]
    with pytest.raises(ValueError, match="bit field"):
        encode_raw(2, flag)


def test_coils_decode_to_bool() -> None:
    fmt = Format(type=DataType.BOOL)
    assert decode([1], fmt) is True
    assert encode(False, fmt) == [0]


def test_wrong_register_count_is_a_value_error_not_an_invalid_reading() -> None:
    with pytest.raises(ValueError, match="needs 2 register"):
        raw_value([1], Format(type=DataType.F32))
    with pytest.raises(ValueError):
        Format(type=DataType.U32, count=1)
    with pytest.raises(ValueError):
        Format(type=DataType.STRING)
    with pytest.raises(ValueError):
        Format(type=DataType.F32, mask=0xFF)


@given(st.integers(0, 2**32 - 1))
def test_u32_decode_agrees_with_struct(raw: int) -> None:
    hi, lo = raw >> 16, raw & 0xFFFF
    assert decode([hi, lo], Format(type=DataType.U32)) == struct.unpack(">I", raw.to_bytes(4, "big"))[0]
    assert decode([lo, hi], Format(type=DataType.U32, word_order=WordOrder.LITTLE)) == raw
