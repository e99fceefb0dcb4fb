"""``powershare export-site --config FILE --state-dir DIR``: the site as the gateway runs it, as one site file.

The site file with the settings changed at run time in the state directory (followers added on the page, circuits,
wiring, meter, BMS, central system), written by the same function as the page's ``GET /api/site.yaml``
(``gateway.site.export``). ``check-config`` accepts it, and ``run`` started with it (and the same state directory,
which still holds the runtime unit limits and the BMS watchdog) runs the same site. Relative paths in it (OCPP
password files, certificates) stay relative to the original file's directory: write it next to it, or in its place.
It only reads the state directory, so it may run beside the gateway. Its messages are in the command line's
language (``args.lang``); the file itself is the site file's own words.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ProfileRegistry
from gateway.i18n.text import tr
from gateway.site.config import ConfigError
from gateway.site.export import export_site
from gateway.site.store import StoreError, write_atomically
from gateway.site.validation import load_running_site


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser("export-site", help=tr("cli.export.help").render(lang),
                                   description=tr("cli.export.description").render(lang))
    parser.add_argument("--config", required=True, type=Path, metavar="FILE",
                        help=tr("cli.option.site_file").render(lang))
    parser.add_argument("--state-dir", required=True, type=Path, metavar="DIR",
                        help=tr("cli.export.option.state_dir").render(lang))
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help=tr("cli.option.profiles").render(lang))
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help=tr("cli.export.option.output").render(lang))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lang: str = args.lang
    try:
        registry = ProfileRegistry.load(args.profiles)
        running = load_running_site(args.config, registry, args.state_dir)
    except ProfileError as exc:
        print(tr("cli.error", error=str(exc)).render(lang), file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(exc.render(lang), file=sys.stderr)
        return 1
    for warning in running.warnings:
        print(tr("cli.check.warning", warning=warning).render(lang), file=sys.stderr)
    text = export_site(running.site)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(args.output, text.encode("utf-8"))
    except StoreError as exc:
        print(tr("cli.error", error=str(exc)).render(lang), file=sys.stderr)
        return 1
    return 0
