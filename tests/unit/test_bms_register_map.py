"""The register map as a contract: encoding rules, fixed addresses, and the published table kept in sync."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.paths import REPO

from gateway.faces.bms import doc_table
from gateway.faces.bms.register_map import (
    HEARTBEAT,
    HOLDING_SIZE,
    INPUT_SIZE,
    MAX_UNITS,
    SESSION_BASE,
    SESSION_BLOCK_SIZE,
    SESSION_SETTINGS,
    SITE_SETTINGS,
    SITE_VALUES,
    UNIT_BLOCK_BASE,
    UNIT_BLOCK_SIZE,
    UNIT_LIMIT_BASE,
    UNIT_VALUES,
    decode,
    encode,
    largest_raw,
)

REPO = REPO


@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1.0, 10.0, 100.0]), st.sampled_from([1, 2]))
def test_encoding_never_overflows_and_keeps_not_available_apart(value: float, scale: float, words: int) -> None:
    registers = encode(value, scale, words)
    assert len(registers) == words and all(0 <= r <= 0xFFFF for r in registers)
    raw = int.from_bytes(b"".join(r.to_bytes(2, "big") for r in registers), "big")
    not_available = (1 << (16 * words)) - 1
    if not math.isfinite(value):
        assert raw == not_available
    else:
        assert raw < not_available
        if value <= 0:
            assert raw == 0
        elif value * scale < not_available - 1:
            assert abs(raw - value * scale) <= 0.5


def test_thirty_two_bit_values_are_high_word_first() -> None:
    assert encode(123_456, words=2) == [1, 57_920]
    assert encode(None, words=2) == [0xFFFF, 0xFFFF]
    assert encode(None) == [0xFFFF]
    assert encode(-3.0) == [0]
    assert encode(70_000) == [0xFFFE]


@given(st.floats(0, 6000, allow_nan=False), st.sampled_from([1.0, 10.0]))
def test_the_largest_accepted_write_never_exceeds_the_maximum(maximum: float, scale: float) -> None:
    raw = largest_raw(maximum, scale)
    assert raw / scale <= maximum + 1e-6
    assert (raw + 1) / scale > maximum or raw == 0xFFFF


def test_round_limits_are_reachable() -> None:
    assert largest_raw(32.0, 10.0) == 320
    assert largest_raw(3.2, 10.0) == 32
    assert largest_raw(31.95, 10.0) == 319


def test_the_fixed_addresses_of_the_contract() -> None:
    names = {s.address: s.name for s in SITE_SETTINGS} | {HEARTBEAT.address: HEARTBEAT.name}
    assert names == {0: "network_limit", 1: "sharing_enabled", 2: "bms_watchdog", 3: "bms_fallback_limit",
                     4: "bms_heartbeat"}
    site = {v.address: (v.name, v.words) for v in SITE_VALUES}
    assert site[0][0] == "map_version" and site[4][0] == "effective_limit"
    assert site[11] == ("active_power", 2) and site[13][0] == "limit_source" and site[14][0] == "gateway_status"
    unit = {v.offset: (v.name, v.words) for v in UNIT_VALUES}
    assert unit[0][0] == "state" and unit[2][0] == "setpoint" and unit[6] == ("active_power", 2)
    assert unit[8] == ("session_energy", 2) and unit[10][0] == "link_quality" and unit[11][0] == "error_code"
    session = {s.offset: (s.name, s.words, s.scale) for s in SESSION_SETTINGS}
    assert SESSION_BASE == 2000 and SESSION_BLOCK_SIZE == 3
    assert session == {0: ("departure", 2, 1.0), 2: ("energy_wanted", 1, 10.0)}


def test_no_register_overlaps_another_and_blocks_fit() -> None:
    site_words = [v.address + w for v in SITE_VALUES for w in range(v.words)]
    unit_words = [v.offset + w for v in UNIT_VALUES for w in range(v.words)]
    assert len(site_words) == len(set(site_words)) and max(site_words) < UNIT_BLOCK_BASE
    assert len(unit_words) == len(set(unit_words)) and max(unit_words) < UNIT_BLOCK_SIZE
    assert INPUT_SIZE <= 0x10000 and HOLDING_SIZE <= INPUT_SIZE
    session_words = [s.offset + w for s in SESSION_SETTINGS for w in range(s.words)]
    assert sorted(session_words) == list(range(SESSION_BLOCK_SIZE))
    # No request (at most 125 registers) can start among the charger limits and reach the session blocks.
    assert SESSION_BASE - (UNIT_LIMIT_BASE + MAX_UNITS) >= 125
    assert HOLDING_SIZE == SESSION_BASE + SESSION_BLOCK_SIZE * MAX_UNITS


@given(st.one_of(st.none(), st.integers(0, 0xFFFF_FFFE).map(float)), st.sampled_from([1, 2]))
def test_decoding_gives_back_what_was_encoded(value: float | None, words: int) -> None:
    if value is not None and words == 1:
        value = min(value, 0xFFFE)
    assert decode(encode(value, 1.0, words)) == value
    assert decode(encode(12.5, 10.0), 10.0) == 12.5


def test_the_published_table_has_one_row_per_register() -> None:
    table = doc_table.render()
    rows = len(SITE_SETTINGS) + 2 + len(SESSION_SETTINGS) + len(SITE_VALUES) + len(UNIT_VALUES)
    assert table.count("\n| ") == 1 + rows  # header too
    assert "| 11–12 | input | `active_power` | u32 | W |" in table


def _documents_with_the_table() -> list[Path]:
    found = []
    for path in sorted(REPO.rglob("*.md")):
        if any(part.startswith(".") or part in {"node_modules", "build"} for part in path.relative_to(REPO).parts):
            continue
        if doc_table.BEGIN in path.read_text(encoding="utf-8"):
            found.append(path)
    return found


def test_docs_bms_carries_the_table() -> None:
    assert REPO / "docs" / "bms.md" in _documents_with_the_table()


@pytest.mark.parametrize("path", _documents_with_the_table(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_copy_of_the_table_is_the_generated_one(path: Path) -> None:
    committed = doc_table.committed_table(path.read_text(encoding="utf-8"))
    assert committed == doc_table.render(), (
        f"{path.relative_to(REPO)}: the register table differs from gateway/bms/register_map.py; "
        f"run: python -m gateway.faces.bms.doc_table {path.relative_to(REPO)}")


def test_the_refresh_command_rewrites_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(f"intro\n{doc_table.BEGIN}\nold table\n{doc_table.END}\noutro\n", encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "gateway.faces.bms.doc_table", "--check", str(doc)], cwd=REPO,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 1 and "out of date" in check.stderr
    assert doc_table.main([str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == (f"intro\n{doc_table.BEGIN}\n{doc_table.render()}\n{doc_table.END}"
                                               "\noutro\n")
    assert doc_table.main(["--check", str(doc)]) == 0
