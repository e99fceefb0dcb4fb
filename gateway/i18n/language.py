"""Which language a reader gets.

The command line: ``--lang``, else the first of ``POWERSHARE_LANG``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is
set (the locale variables in their POSIX order of precedence, so ``LANG=de_DE.UTF-8`` gives German and
``LC_ALL=C`` English). The web: the language the page chose (a cookie), else the browser's Accept-Language. Where
nothing names a language there is a catalog for, English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gateway.i18n.catalog import DEFAULT_LANGUAGE, SHIPPED

ENVIRONMENT = ("POWERSHARE_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
"""The variables the command line reads, first set first."""
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*(?:\.[A-Za-z0-9_-]+)?(?:@[A-Za-z0-9_-]+)?$")


def language_of(tag: str, available: Sequence[str] | None = None) -> str | None:
    """The language of a locale name or language tag ("de_DE.UTF-8", "de-AT", "de") if there is a catalog for it.

    "C" and "POSIX" are English, as the C library treats them.
    """
    languages = SHIPPED.languages if available is None else available
    tag = tag.strip()
    if tag.split(".")[0] in ("C", "POSIX"):
        return DEFAULT_LANGUAGE
    match = _TAG.match(tag)
    if match is None:
        return None
    code = match.group(1).lower()
    return code if code in languages else None


def cli_language(explicit: str | None, environ: Mapping[str, str],
                 available: Sequence[str] | None = None) -> str:
    """``--lang`` if given and known, else the first locale variable that is set (a language without a catalog
    there means English, as a program without that translation would speak)."""
    if explicit:
        chosen = language_of(explicit, available)
        if chosen is not None:
            return chosen
    for name in ENVIRONMENT:
        value = environ.get(name, "")
        if value:
            return language_of(value, available) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def accepted_language(header: str | None, available: Sequence[str] | None = None) -> str | None:
    """The most wanted language of an Accept-Language header that there is a catalog for (RFC 9110: q-values,
    "*" ignored, q=0 means not wanted)."""
    if not header:
        return None
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        match = re.search(r"\bq\s*=\s*([^;\s]*)", params)
        if match is not None:
            try:
                quality = float(match.group(1))
            except ValueError:
                continue  # a q-value that is not a number: the entry is ignored
        if quality <= 0 or tag in ("", "*"):
            continue
        code = language_of(tag, available)
        if code is not None:
            wanted.append((-quality, position, code))
    return min(wanted)[2] if wanted else None


def web_language(chosen: str | None, accept_language: str | None, available: Sequence[str] | None = None) -> str:
    """The page's choice (its cookie) if it is a language there is a catalog for, else Accept-Language, else
    English."""
    if chosen:
        code = language_of(chosen, available)
        if code is not None:
            return code
    return accepted_language(accept_language, available) or DEFAULT_LANGUAGE
