"""Translatable texts: a ``str`` that is its English rendering and remembers how to render itself again.

A message is made where the words are chosen (``tr("site.network_above_installation", limit=..., most=...)``) and
rendered where the reader is known (``localized(text, "de")``). Being a ``str``, it flows unchanged through
everything that only needs English (``str(exc)``, the log, the BMS and MQTT faces, existing tests), and a message
made of messages (a refusal naming a setting, several problems joined) keeps its parts translatable, since
parameters that are texts are rendered in the same language.

Numbers in parameters are written with the language's decimal separator ("16,5 A"); the template's format spec
(``{limit:g}``) is the same in every language. Rendering never raises: a template a translation got wrong, or an
id a catalog lacks, falls back to English.

Message ids are literal strings at the call (``tr("id", ...)``, or ``say("id", ...)`` with ``say = speaker(lang)``
where text is printed at once) or marked with ``msgid("id")`` where a table picks them, so a test can find every id
the code uses and check it against the catalogs (tests/unit/test_i18n_catalogs.py).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from gateway.i18n.catalog import DEFAULT_LANGUAGE, SHIPPED, Catalogs

log = logging.getLogger("gateway.i18n")

_warned: set[tuple[str, str]] = set()


class Text(str):
    """A text a reader may want in another language; ``str`` of it is English."""

    def render(self, lang: str, catalogs: Catalogs = SHIPPED) -> str:
        return str.__str__(self)


class Message(Text):
    """One catalog message with its parameters."""

    id: str
    params: Mapping[str, object]

    def __new__(cls, message_id: str, params: Mapping[str, object], catalogs: Catalogs = SHIPPED) -> Message:
        self = super().__new__(cls, _render(message_id, params, DEFAULT_LANGUAGE, catalogs))
        self.id = message_id
        self.params = dict(params)
        return self

    def render(self, lang: str, catalogs: Catalogs = SHIPPED) -> str:
        if lang == DEFAULT_LANGUAGE and catalogs is SHIPPED:
            return str.__str__(self)
        return _render(self.id, self.params, lang, catalogs)

    def __reduce__(self) -> tuple[Any, ...]:
        return Message, (self.id, self.params)


class Joined(Text):
    """Texts joined by a separator (several problems in one refusal), each rendered in the reader's language."""

    parts: tuple[str, ...]
    separator: str

    def __new__(cls, parts: Iterable[str], separator: str = "; ") -> Joined:
        items = tuple(parts)
        self = super().__new__(cls, separator.join(str.__str__(p) for p in items))
        self.parts = items
        self.separator = separator
        return self

    def render(self, lang: str, catalogs: Catalogs = SHIPPED) -> str:
        return self.separator.join(localized(p, lang, catalogs) for p in self.parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return Joined, (self.parts, self.separator)


class Capitalized(Text):
    """A text that begins a sentence: its first letter upper case in every language ("the limit ..." -> "The
    limit ...", "der Grenzwert ..." -> "Der Grenzwert ...")."""

    inner: str

    def __new__(cls, inner: str) -> Capitalized:
        self = super().__new__(cls, _capital(str.__str__(inner)))
        self.inner = inner
        return self

    def render(self, lang: str, catalogs: Catalogs = SHIPPED) -> str:
        return _capital(localized(self.inner, lang, catalogs))

    def __reduce__(self) -> tuple[Any, ...]:
        return Capitalized, (self.inner,)


def tr(message_id: str, /, **params: object) -> Message:
    """The message ``message_id`` with its parameters; ``str`` of it is English."""
    return Message(message_id, params)


class Say(Protocol):
    def __call__(self, message_id: str, /, **params: object) -> str: ...


def speaker(lang: str) -> Say:
    """``say = speaker("de")``: ``say("id", name=value)`` is the message rendered in German (for code that prints)."""

    def say(message_id: str, /, **params: object) -> str:
        return Message(message_id, params).render(lang)

    return say


def msgid(message_id: str) -> str:
    """Marks a literal as a message id that a table holds and code picks at run time (``tr(TABLE[key])``)."""
    return message_id


def joined(parts: Iterable[str], separator: str = "; ") -> Joined:
    return Joined(parts, separator)


def capitalized(text: str) -> Capitalized:
    return Capitalized(text)


def fixed(value: float, digits: int, lang: str, catalogs: Catalogs = SHIPPED) -> str:
    """``value`` with ``digits`` decimals and the language's decimal separator ("16,5"), for a report's columns."""
    return f"{value:.{digits}f}".replace(".", catalogs.decimal_separator(lang))


def localized(value: object, lang: str, catalogs: Catalogs = SHIPPED) -> str:
    """``value`` in ``lang`` if it is a text; anything else as ``str`` gives it (a device's own words, a path)."""
    return value.render(lang, catalogs) if isinstance(value, Text) else str(value)


def text_of(exc: BaseException) -> str:
    """The message an error was raised with, still translatable (``str(exc)`` would be plain English)."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Text):
        return exc.args[0]
    return str(exc)


def placeholders(template: str) -> dict[str, str]:
    """The placeholders of a template and their format specs: ``"{limit:g} A"`` -> ``{"limit": "g"}``."""
    found: dict[str, str] = {}
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None:
            found[name] = spec or ""
    return found


class _Formatter(string.Formatter):
    """``str.format`` with texts rendered in the language and numbers written with its decimal separator."""

    def __init__(self, lang: str, catalogs: Catalogs) -> None:
        self.lang = lang
        self.catalogs = catalogs
        self.decimal = catalogs.decimal_separator(lang)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, Text):
            value = value.render(self.lang, self.catalogs)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> str:
        text = format(value, format_spec)
        if self.decimal != "." and isinstance(value, int | float) and not isinstance(value, bool):
            text = text.replace(".", self.decimal)
        return text


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _render(message_id: str, params: Mapping[str, object], lang: str, catalogs: Catalogs) -> str:
    for language in dict.fromkeys((lang, DEFAULT_LANGUAGE)):
        template = catalogs.template(language, message_id)
        if template is None:
            continue  # not translated yet: English
        try:
            return _Formatter(language, catalogs).vformat(template, (), params)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            if (language, message_id) not in _warned:
                _warned.add((language, message_id))
                log.warning("message %s in catalog %s does not fit its parameters (%s): shown in English",
                            message_id, language, exc)
    return message_id
