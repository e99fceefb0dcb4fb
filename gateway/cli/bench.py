"""``powershare bench``: every scenario × policy in virtual time, as a table or a JSON document.

Wall time is measured here, in the shell, so the virtual site and the policies stay free of clocks. Without scipy
the optimum is skipped (with the command that installs it) and everything else still runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from gateway.i18n.text import tr
from gateway.sim.bench.optimum import INSTALL_HINT, SolverMissing
from gateway.sim.bench.scenarios import SCENARIOS, build
from gateway.sim.bench.suite import OPTIMUM, POLICIES, energy_ratio, figures, powershare_ratios, run_policy
from gateway.sim.virtual_site import RunResult


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser(
        "bench", help=tr("cli.bench.help").render(lang),
        description="Run every scenario with every policy in virtual time and print energy, over-limit "
                    "amp-seconds, completion times and peaks (see docs/benchmark.md).")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="NAME",
                        help=f"scenario to run (repeatable; default all: {', '.join(SCENARIOS)})")
    parser.add_argument("--policies", nargs="+", choices=list(POLICIES), metavar="POLICY",
                        help=f"policies to run (default all: {', '.join(POLICIES)})")
    parser.add_argument("--order", choices=("fair", "shortest_first"), default="fair",
                        help="powershare's control.order (default fair; docs/deadlines.md#order)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    parser.add_argument("--hours", type=_positive_hours, default=None,
                        help="run each scenario for this many hours, same shape compressed (default: full run)")
    parser.set_defaults(func=run)


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 48:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 48")
    return value


def run(args: argparse.Namespace) -> int:
    scenarios = list(dict.fromkeys(args.scenario or SCENARIOS))
    policies = list(dict.fromkeys(args.policies or POLICIES))
    # References and peers first, so powershare's ratios are known when its row is printed.
    policies.sort(key=lambda p: {OPTIMUM: 0, "static_split": 1, "powershare": 3}.get(p, 2))
    notes: list[str] = []
    document: dict[str, Any] = {"seed": args.seed, "hours": args.hours, "order": args.order, "notes": notes,
                                "scenarios": {}}
    if not args.json:
        print(_header())
    for name in scenarios:
        setup = build(name, seed=args.seed, hours=args.hours)
        entry: dict[str, Any] = {
            "description": setup.description, "chargers": len(setup.chargers), "duration_h": setup.duration_s / 3600,
            "policies": {}}
        document["scenarios"][name] = entry
        results: dict[str, RunResult] = {}
        for policy in policies:
            started = time.perf_counter()
            try:
                result = run_policy(policy, setup, args.order)
            except SolverMissing:
                if INSTALL_HINT not in notes:
                    notes.append(INSTALL_HINT)
                    print(f"optimum skipped: {INSTALL_HINT}", file=sys.stderr)
                continue
            wall = time.perf_counter() - started
            results[policy] = result
            row = figures(result) | {"wall_s": round(wall, 3),
                                     "x_real_time": round(setup.duration_s / wall) if wall > 0 else None}
            if policy != OPTIMUM:
                row["energy_ratio_to_optimum"] = energy_ratio(result, results)
            if policy == "powershare":
                row |= powershare_ratios(results)
            entry["policies"][policy] = row
            if not args.json:
                print(_row(name, policy, row), flush=True)
                if policy == "powershare" and row["versus_peers"]["ratios"]:
                    print(_peer_line(row["versus_peers"]), flush=True)
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        print()
    return 0


_COLUMNS = (("scenario", 10), ("policy", 12), ("kWh", 8), ("over A·s", 9), ("strict A·s", 10), ("compl h", 7),
            ("wait h", 6), ("unfin", 7), ("peak L1/L2/L3 A", 17), ("vs opt", 6), ("vs static", 9), ("wall s", 7),
            ("x real", 7))


def _header() -> str:
    return "  ".join(f"{title:>{width}}" if i > 1 else f"{title:<{width}}"
                     for i, (title, width) in enumerate(_COLUMNS))


def _row(scenario: str, policy: str, row: dict[str, Any]) -> str:
    peak = row["peak_a"]
    ratio = row.get("energy_ratio_to_optimum")
    versus_static = row.get("completion_ratio_to_static")
    cells = (scenario, policy, f"{row['energy_kwh']:.1f}", f"{row['over_limit_amp_seconds']:.1f}",
             f"{row['over_limit_strict_amp_seconds']:.1f}", f"{row['mean_completion_h']:.2f}",
             f"{row['longest_wait_h']:.2f}", f"{row['unfinished']}/{row['cars']}",
             f"{peak['L1']:.0f}/{peak['L2']:.0f}/{peak['L3']:.0f}",
             "" if ratio is None else f"{ratio:.3f}", "" if versus_static is None else f"{versus_static:.3f}",
             f"{row['wall_s']:.2f}", f"{row['x_real_time'] or 0:.0f}")
    return "  ".join(f"{cell:>{width}}" if i > 1 else f"{cell:<{width}}"
                     for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True)))


def _peer_line(versus: dict[str, Any]) -> str:
    """powershare ÷ each peer, energy and mean completion, on one line under its row."""
    cells = [f"{name} {r['energy'] or 0:.3f}/{r['completion'] or 0:.3f}" for name, r in versus["ratios"].items()]
    verdict = "energy >= all: {}, completion <= all: {}".format(
        "yes" if versus["energy_at_least_every_peer"] else "no",
        "yes" if versus["completion_at_most_every_peer"] else "no")
    return "    powershare / peer (energy/completion): " + ", ".join(cells) + f"; {verdict}"
