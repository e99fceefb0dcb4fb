"""``powershare profiles``: which devices the gateway can drive, and what exactly it will read and write on them.

The installer picks a profile name for the site file here, and the integrator checks a profile's addresses against
the device manual with ``--show`` before trusting it on a live installation. The help and the errors are in the
command line's language; the tables stay English, like the profiles and the device manuals they are checked against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from drivers.errors import ProfileError
from drivers.profile import ChargerProfile, MeterProfile, Point, ProfileRegistry
from gateway.i18n.text import tr


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser("profiles", help=tr("cli.profiles.help").render(lang),
                                   description=tr("cli.profiles.description").render(lang))
    parser.add_argument("--show", metavar="NAME", help=tr("cli.profiles.option.show").render(lang))
    parser.add_argument("--kind", choices=("charger", "meter"), help=tr("cli.profiles.option.kind").render(lang))
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help=tr("cli.option.profiles").render(lang))
    parser.set_defaults(func=run)


def console() -> Console:
    """A console on the current stdout; wide when not a terminal so piped tables are not cut."""
    out = sys.stdout
    return Console(file=out, width=None if out.isatty() else 200, highlight=False)


def run(args: argparse.Namespace) -> int:
    try:
        registry = ProfileRegistry.load(args.profiles)
    except ProfileError as exc:
        print(tr("cli.error", error=str(exc)).render(args.lang), file=sys.stderr)
        return 1
    if args.show:
        if args.show not in registry:
            print(tr("cli.profiles.unknown", profile=args.show).render(args.lang), file=sys.stderr)
            return 1
        show(registry.get(args.show), console())
        return 0
    listing(registry, args.kind, console())
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def listing(registry: ProfileRegistry, kind: str | None, out: Console) -> None:
    table = RichTable(title="device profiles", title_justify="left")
    for column in ("name", "kind", "manufacturer", "transports", "trust", "max A", "fail-safe", "read-back",
                   "enable", "energy"):
        table.add_column(column, no_wrap=True)
    for profile in registry:
        if kind is not None and profile.kind != kind:
            continue
        transports = ", ".join(t.value for t in profile.transports)
        if isinstance(profile, ChargerProfile):
            caps = profile.capabilities()
            energy = "lifetime" if profile.has("energy") else ("session" if profile.has("session_energy") else "-")
            table.add_row(profile.name, profile.kind, profile.manufacturer, transports, profile.trust.value,
                          f"{caps.max_current_a:g}", _yes(caps.has_failsafe), _yes(caps.can_read_setpoint),
                          _yes(caps.can_disable), energy)
        else:
            table.add_row(profile.name, profile.kind, profile.manufacturer, transports, profile.trust.value,
                          "", "", "", "", _yes(profile.has("energy_import")))
    out.print(table)


def _range(point: Point) -> str:
    if point.valid_min is None and point.valid_max is None:
        return ""
    low = "" if point.valid_min is None else f"{point.valid_min:g}"
    high = "" if point.valid_max is None else f"{point.valid_max:g}"
    return f"{low}..{high}"


def _type(point: Point) -> str:
    text = point.type.value
    if point.type.fixed_count is None:
        text += f"[{point.register_count}]"
    if point.register_count > 1 and not point.type.is_text and point.word_order.value == "little":
        text += " LSW first"
    if point.byte_swap:
        text += " byte-swapped"
    if point.mask is not None:
        text += f" & 0x{point.mask:X}"
    return text


def show(profile: ChargerProfile | MeterProfile, out: Console) -> None:
    out.print(f"[bold]{profile.name}[/bold]  {profile.kind}, {profile.manufacturer}: {', '.join(profile.models)}")
    out.print(f"transports: {', '.join(t.value for t in profile.transports)}; default unit id "
              f"{profile.default_unit_id}; trust: {profile.trust.value}; sources: {', '.join(profile.sources)}")
    if isinstance(profile, ChargerProfile):
        caps = profile.capabilities()
        out.print(f"nameplate {profile.nameplate_a:g} A, setpoint {profile.control.min_current_a:g}.."
                  f"{profile.max_setpoint_a:g} A in steps of {caps.resolution_a:g} A, pause by "
                  f"{profile.control.pause.value}; fail-safe: {_yes(caps.has_failsafe)}; watchdog kept alive by "
                  f"{profile.watchdog.keep_alive.value}")
    quirks = profile.quirks.model_dump(exclude_defaults=True)
    if quirks:
        out.print("quirks: " + "; ".join(f"{k} = {v}" for k, v in quirks.items()))
    if profile.notes:
        out.print(f"notes: {profile.notes}")
    table = RichTable(title="points", title_justify="left")
    for column in ("point", "table", "address", "type", "scale", "unit", "valid", "access", "FC", "unit id",
                   "trust", "meaning"):
        table.add_column(column, overflow="fold")
    roles = profile.roles()
    ordered = sorted(profile.all_points().items(),
                     key=lambda item: (item[1].device_id or 0, item[1].table.value, item[1].address, item[0]))
    for name, point in ordered:
        meaning = point.notes
        if point.enum:
            mapping = ", ".join(f"{k}={v}" for k, v in point.enum.items())
            meaning = f"{mapping}. {meaning}" if meaning else mapping
        table.add_row(name if name in roles else f"({name})", point.table.value,
                      f"{point.address} (0x{point.address:04X})", _type(point), f"{point.scale:g}",
                      point.unit or "", _range(point), point.access, str(point.write_fc or ""),
                      "" if point.device_id is None else str(point.device_id), point.trust.value, meaning)
    out.print(table)
    if isinstance(profile, ChargerProfile) and profile.state_rules:
        out.print("state rules (first match wins):")
        for rule in profile.state_rules:
            condition = " and ".join(f"{n} in {list(v)}" for n, v in rule.when.items()) or "otherwise"
            out.print(f"  {condition} -> {rule.state.value}")
    out.print("(names in parentheses are aux points: inputs of state rules and init writes, or documentation)")
