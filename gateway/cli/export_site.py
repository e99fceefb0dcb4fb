"""``powershare export-site --config FILE --state-dir DIR``: the site as the gateway runs it, as one site file.

The site file with the settings changed at run time in the state directory (followers added on the page, circuits,
wiring, meter, BMS, central system), written by the same function as the page's ``GET /api/site.yaml``
(``gateway.site.export``). ``check-config`` accepts it, and ``run`` started with it (and the same state directory,
which still holds the runtime unit limits and the BMS watchdog) runs the same site. Relative paths in it (OCPP
password files, certificates) stay relative to the original file's directory: write it next to it, or in its place.
It only reads the state directory, so it may run beside the gateway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ProfileRegistry
from gateway.site.config import ConfigError
from gateway.site.export import export_site
from gateway.site.store import StoreError, write_atomically
from gateway.site.validation import load_running_site


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export-site", help="write the site as the gateway runs it (site file + run-time settings) as a site file",
        description="Write the site file with the settings changed at run time (the page, the BMS) as one site "
                    "file that check-config accepts; to standard output, or to --output.")
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="the site file (YAML)")
    parser.add_argument("--state-dir", required=True, type=Path, metavar="DIR",
                        help="the gateway's state directory (only read)")
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help="also load site-specific profiles from DIR (repeatable)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here (atomically) instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        registry = ProfileRegistry.load(args.profiles)
        running = load_running_site(args.config, registry, args.state_dir)
    except (ProfileError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in running.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = export_site(running.site)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(args.output, text.encode("utf-8"))
    except StoreError as exc:
        print(f"powershare export-site: {exc}", file=sys.stderr)
        return 1
    return 0
