"""The published register table, generated from the register map and kept between markers in the docs.

docs/bms.md (and the README) carry the table between ``BEGIN`` and ``END``; a test fails when any file's copy
differs from ``render()``. To refresh them after changing the map:

    python -m gateway.faces.bms.doc_table docs/bms.md README.md

``--check`` only reports (exit status 1) which files are out of date.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.faces.bms.register_map import MAP_VERSION, all_rows

BEGIN = "<!-- BEGIN bms-register-table: generated from gateway/faces/bms/register_map.py, do not edit by hand -->"
END = "<!-- END bms-register-table -->"
_HEADER = ("Address", "Table", "Name", "Type", "Unit", "Range", "Access", "Description")


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "–"


def render() -> str:
    """The table as Markdown, markers excluded."""
    lines = [f"Register map version {MAP_VERSION} (IR0).", "",
             "| " + " | ".join(_HEADER) + " |", "|" + "|".join("---" for _ in _HEADER) + "|"]
    for row in all_rows():
        cells = (row.address, row.table.value, f"`{row.name}`", row.type, row.unit, row.range, row.access,
                 row.description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def committed_table(text: str) -> str | None:
    """What a document holds between the markers, or None if it has none."""
    start = text.find(BEGIN)
    if start < 0:
        return None
    end = text.find(END, start)
    if end < 0:
        raise ValueError(f"{BEGIN!r} without a following {END!r}")
    return text[start + len(BEGIN):end].strip("\n")


def splice(text: str) -> str:
    """``text`` with the current table between its markers."""
    if committed_table(text) is None:
        raise ValueError(f"no {BEGIN!r} marker")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return f"{text[:start]}\n{render()}\n{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.faces.bms.doc_table",
                                     description="Refresh the BMS register table in documents.")
    parser.add_argument("--check", action="store_true", help="report out-of-date files instead of rewriting them")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    stale = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        try:
            new = splice(text)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if new == text:
            continue
        stale += 1
        if args.check:
            print(f"{path}: the register table is out of date", file=sys.stderr)
        else:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(path)
            print(f"{path}: register table updated")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
