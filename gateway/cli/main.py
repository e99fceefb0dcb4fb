"""``powershare``: one sub-command per job.

Each job lives in its own module, which exposes ``register(subparsers, lang)``; this file only lists them, so
adding a job never means editing another job's code. The language of the help texts and of what the commands
print is chosen first (``gateway.cli.localized``) and passed to every job as ``args.lang``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.cli import logs
from gateway.cli.localized import Parser, add_language_option, language, localize
from gateway.i18n.catalog import DEFAULT_LANGUAGE
from gateway.i18n.language import cli_language
from gateway.i18n.text import tr

COMMAND_MODULES: tuple[str, ...] = (
    "gateway.cli.profiles", "gateway.cli.check_config", "gateway.cli.simulate", "gateway.cli.probe",
    "gateway.cli.bench",
    "gateway.cli.csms",
    "gateway.cli.run",
    "gateway.cli.demo",
    "gateway.cli.export_site",
)


def build_parser(lang: str = DEFAULT_LANGUAGE) -> argparse.ArgumentParser:
    parser = Parser(prog="powershare", description=tr("cli.description").render(lang))
    parser.add_argument("--version", action="version", version=f"powershare {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=tr("cli.option.verbose").render(lang))
    parser.add_argument("--log-format", choices=logs.FORMATS, default="plain",
                        help=tr("cli.option.log_format").render(lang))
    add_language_option(parser, lang, default=None)
    sub = parser.add_subparsers(dest="command", metavar=tr("cli.command_metavar").render(lang))
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, lang)
    localize(parser, lang)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(language(arguments, os.environ))
    args = parser.parse_args(arguments)
    args.lang = cli_language(args.lang, os.environ)
    logs.configure(args.log_format, args.verbose, lang=args.lang)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
