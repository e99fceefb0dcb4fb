"""The OCPP 1.6 measurands the gateway can report, by name (spec §9.1.16); no imports, so the site-file schema and
the configuration-key table can both use it."""

from __future__ import annotations

ENERGY = "Energy.Active.Import.Register"
PHASED = ("Current.Import", "Current.Offered", "Power.Active.Import")
"""Measurands that may take a phase suffix (``.L1``, ``.L2``, ``.L3``)."""
MEASURANDS = frozenset({ENERGY, "Power.Offered", *PHASED, *(f"{m}.{p}" for m in PHASED for p in ("L1", "L2", "L3"))})
"""Measurands the gateway can report from its readings."""


def measurand_problem(entries: list[str]) -> str | None:
    """Why a list of measurands cannot be used (spec §3.16.4: the whole list is refused), or None."""
    unknown = [e for e in entries if e not in MEASURANDS]
    if unknown:
        return f"not supported: {', '.join(unknown)}"
    if len(set(entries)) != len(entries):
        return "an entry is repeated"
    return None
