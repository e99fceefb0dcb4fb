"""The command line in the reader's language.

Which language: ``--lang`` (before or after the command), else ``POWERSHARE_LANG``, ``LC_ALL``, ``LC_MESSAGES``,
``LANG`` (``gateway.i18n.language.cli_language``). The help texts are built in that language, so it is read from
the arguments before they are parsed. argparse's own words are put in it too: the usage line, the section titles,
``-h`` and ``--version``, the error line; its messages about a wrong command line ("the following arguments are
required") stay English, since they come from Python itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import NoReturn

from gateway.i18n.catalog import DEFAULT_LANGUAGE, SHIPPED
from gateway.i18n.language import cli_language
from gateway.i18n.text import tr

OPTION = "--lang"


def requested_language(argv: Sequence[str]) -> str | None:
    """The value of ``--lang`` in ``argv`` (``--lang de`` or ``--lang=de``), if any, before ``--``."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == OPTION and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(OPTION + "="):
            return arg.split("=", 1)[1]
    return None


def language(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    return cli_language(requested_language(argv), environ)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error line is in ``lang`` (``localize`` sets it on every sub-command)."""

    lang = DEFAULT_LANGUAGE

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, tr("cli.error_line", prog=self.prog, error=message).render(self.lang) + "\n")


def _formatter(lang: str) -> type[argparse.HelpFormatter]:
    usage = tr("cli.usage").render(lang) + " "

    class Localized(argparse.HelpFormatter):
        def add_usage(self, usage_text: str | None, actions: Iterable[argparse.Action],
                      groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None = None) -> None:
            super().add_usage(usage_text, actions, groups, usage if prefix is None else prefix)

    return Localized


def add_language_option(parser: argparse.ArgumentParser, lang: str, *, default: object) -> None:
    parser.add_argument(OPTION, choices=SHIPPED.languages, default=default, metavar="LANG",
                        help=tr("cli.option.lang", languages=", ".join(SHIPPED.languages)).render(lang))


def localize(parser: argparse.ArgumentParser, lang: str, *, top: bool = True) -> None:
    """argparse's words in ``lang`` on ``parser`` and its sub-commands; each sub-command also takes ``--lang``."""
    if isinstance(parser, Parser):
        parser.lang = lang
    parser.formatter_class = _formatter(lang)
    parser._positionals.title = tr("cli.positionals").render(lang)
    parser._optionals.title = tr("cli.options").render(lang)
    if not top:
        add_language_option(parser, lang, default=argparse.SUPPRESS)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            action.help = tr("cli.option.help").render(lang)
        elif isinstance(action, argparse._VersionAction):
            action.help = tr("cli.option.version").render(lang)
        elif isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                localize(sub, lang, top=False)
