"""``powershare``: one sub-command per job.

Each job lives in its own module, which exposes ``register(subparsers)``; this file only lists them, so adding a
job never means editing another job's code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.cli import logs

COMMAND_MODULES: tuple[str, ...] = (
    "gateway.cli.profiles", "gateway.cli.check_config", "gateway.cli.simulate", "gateway.cli.probe",
    "gateway.cli.bench",
    "gateway.cli.csms",
    "gateway.cli.run",
    "gateway.cli.demo",
    "gateway.cli.export_site",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="powershare",
        description="Share one electrical supply among many EV chargers (Modbus RTU/TCP, OCPP 1.6J).",
    )
    parser.add_argument("--version", action="version", version=f"powershare {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument("--log-format", choices=logs.FORMATS, default="plain",
                        help="plain lines (default; with syslog priority prefixes and no timestamps under "
                             "systemd) or one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_format, args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
