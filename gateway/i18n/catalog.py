"""The message catalogs: one JSON file per language, a flat object of message id to template.

The files are package data (``gateway/i18n/catalogs/*.json``, no compiled form, no build step): a language is
added by adding its file. English is the reference: every id is in it, and any other catalog may lack an id (the
message is then shown in English). A catalog that cannot be read is treated as empty, with one warning, so a
damaged translation never takes a message, let alone the gateway, down; a damaged English catalog is an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable

from gateway.errors import StartError

log = logging.getLogger("gateway.i18n")

DEFAULT_LANGUAGE = "en"
"""The reference catalog, the fallback for a missing id and the language of logs and machine-facing texts."""
LANGUAGE_NAME = "language.name"
"""The id of a language's own name ("Deutsch"), shown in the page's language switch."""
DECIMAL_SEPARATOR = "format.decimal_separator"
"""The id of a language's decimal separator ("," in German): numbers in messages are written with it."""


class CatalogError(StartError):
    """The English catalog cannot be read: the package is damaged."""


class Catalogs:
    """The catalogs in one folder, each read once, on first use."""

    def __init__(self, folder: Traversable) -> None:
        self._folder = folder
        self._loaded: dict[str, Mapping[str, str]] = {}
        self.languages: tuple[str, ...] = tuple(sorted(
            (entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json")),
            key=lambda code: (code != DEFAULT_LANGUAGE, code)))
        """The language codes there are catalogs for, English first."""

    def messages(self, lang: str) -> Mapping[str, str]:
        """Every template of ``lang`` (empty for a language without a catalog)."""
        found = self._loaded.get(lang)
        if found is None:
            found = self._loaded[lang] = self._read(lang) if lang in self.languages else {}
        return found

    def complete(self, lang: str, prefix: str) -> dict[str, str]:
        """Every id starting with ``prefix``: ``lang``'s template, English where ``lang`` has none."""
        merged = {k: v for k, v in self.messages(DEFAULT_LANGUAGE).items() if k.startswith(prefix)}
        merged.update((k, v) for k, v in self.messages(lang).items() if k in merged)
        return merged

    def template(self, lang: str, message_id: str) -> str | None:
        return self.messages(lang).get(message_id)

    def name(self, lang: str) -> str:
        return self.template(lang, LANGUAGE_NAME) or lang

    def decimal_separator(self, lang: str) -> str:
        return self.template(lang, DECIMAL_SEPARATOR) or "."

    def _read(self, lang: str) -> Mapping[str, str]:
        path = self._folder / f"{lang}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in data.items()):
                raise ValueError("not an object of message ids to texts")
        except (OSError, ValueError) as exc:
            if lang == DEFAULT_LANGUAGE:
                raise CatalogError(f"the English message catalog cannot be read: {exc}") from exc
            log.warning("message catalog %s cannot be read (%s): its messages are shown in English", lang, exc)
            return {}
        return data


SHIPPED = Catalogs(files("gateway.i18n") / "catalogs")
"""The catalogs installed with the gateway."""
