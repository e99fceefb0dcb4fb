"""The translation mechanism: which language a reader gets, how a message renders in it, and that nothing a
translation lacks or gets wrong can break a message (English instead, and nothing noisy in the log)."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from gateway.cli.localized import requested_language
from gateway.cli.logs import formatter_for
from gateway.i18n.catalog import CatalogError, Catalogs
from gateway.i18n.language import accepted_language, cli_language, language_of, web_language
from gateway.i18n.text import Message, capitalized, fixed, joined, localized, text_of, tr
from gateway.runtime.commands import CommandRejected

LANGUAGES = ("en", "de")


@pytest.mark.parametrize(("tag", "lang"), [
    ("de_DE.UTF-8", "de"), ("de-AT", "de"), ("de", "de"), ("DE_ch", "de"), ("de_DE@euro", "de"), ("en_US", "en"),
    ("C", "en"), ("C.UTF-8", "en"), ("POSIX", "en"), ("fr_FR.UTF-8", None), ("", None), ("../de", None)])
def test_the_language_of_a_locale_or_a_tag(tag: str, lang: str | None) -> None:
    assert language_of(tag, LANGUAGES) == lang


@pytest.mark.parametrize(("explicit", "environ", "lang"), [
    (None, {}, "en"),
    (None, {"LANG": "de_DE.UTF-8"}, "de"),
    (None, {"LC_MESSAGES": "de_DE.UTF-8", "LANG": "en_US.UTF-8"}, "de"),
    (None, {"LC_ALL": "C", "LC_MESSAGES": "de_DE.UTF-8", "LANG": "de_DE.UTF-8"}, "en"),
    (None, {"POWERSHARE_LANG": "de", "LC_ALL": "C"}, "de"),
    (None, {"LC_ALL": "", "LANG": "de_DE.UTF-8"}, "de"),  # set but empty counts as unset
    (None, {"LANG": "fr_FR.UTF-8"}, "en"),  # the first set decides, even without a catalog
    ("de", {"LANG": "en_US.UTF-8"}, "de"),
    ("en", {"POWERSHARE_LANG": "de"}, "en"),
    ("xx", {"LANG": "de_DE.UTF-8"}, "de"),  # an unknown --lang is argparse's to refuse; the help meanwhile
])
def test_the_command_lines_language(explicit: str | None, environ: dict[str, str], lang: str) -> None:
    assert cli_language(explicit, environ, LANGUAGES) == lang


@pytest.mark.parametrize(("argv", "wanted"), [
    (["check-config", "--lang", "de", "site.yaml"], "de"), (["--lang=de", "run"], "de"), (["--lang"], None),
    (["demo", "--", "--lang", "de"], None), (["check-config", "site.yaml"], None)])
def test_lang_is_read_before_the_parser_is_built(argv: list[str], wanted: str | None) -> None:
    assert requested_language(argv) == wanted


@pytest.mark.parametrize(("header", "lang"), [
    ("de-DE,de;q=0.9,en;q=0.8", "de"), ("en-US,en;q=0.9,de;q=0.8", "en"), ("fr-FR, de;q=0.5", "de"),
    ("en;q=0.2, de;q=0.7", "de"), ("de;q=0, en", "en"), ("*", None), ("fr", None), ("", None), (None, None),
    ("de;q=abc, en;q=0.1", "en"), (";;,,", None)])
def test_accept_language(header: str | None, lang: str | None) -> None:
    assert accepted_language(header, LANGUAGES) == lang


def test_the_pages_choice_wins_over_the_browser() -> None:
    assert web_language("en", "de", LANGUAGES) == "en"
    assert web_language("de", None, LANGUAGES) == "de"
    assert web_language("xx", "de", LANGUAGES) == "de"
    assert web_language(None, None, LANGUAGES) == "en"


def test_a_message_is_its_english_and_renders_in_german() -> None:
    message = tr("site.network_above_installation", network=60.5, installation=40)
    assert message == "60.5 A is above the installation limit 40 A" and isinstance(message, str)
    assert message.render("de") == "60,5 A liegt über der Anlagen-Stromgrenze von 40 A"
    assert localized(message, "de") == message.render("de") and localized("a path.yaml", "de") == "a path.yaml"


def test_texts_inside_a_text_render_in_the_same_language() -> None:
    limit = capitalized(tr("settings.limit.unit", charger="bay-1"))
    refusal = tr("settings.limit.out_of_range", limit=limit, most_name=tr("settings.most.unit_maximum"), most=32,
                 value=40.5)
    both = joined([refusal, "bay-2: device text"])
    assert both == "The limit of bay-1 must be between 0 A and its maximum (32 A); 40.5 A is not; bay-2: device text"
    assert both.render("de") == ("Die Stromgrenze von bay-1 muss zwischen 0 A und dem Höchstwert des Ladepunkts "
                                 "(32 A) liegen; 40,5 A geht nicht; bay-2: device text")
    assert fixed(16.25, 1, "de") == "16,2" and fixed(16.25, 1, "en") == "16.2"


def test_an_error_keeps_its_translatable_message() -> None:
    error = CommandRejected(tr("settings.charger.unknown", charger="bay-9"), field="charger_id")
    assert str(error) == "no charger 'bay-9' on this site"
    assert localized(text_of(error), "de") == "kein Ladepunkt 'bay-9' an diesem Standort"
    assert text_of(ValueError("plain")) == "plain"


def test_a_message_survives_copying_and_pickling() -> None:
    """An error crossing a thread or process boundary, or copied by a library, keeps its id and parameters."""
    message = joined([capitalized(tr("web.label.limit_a")), tr("input.at_least", ge=6)], " ")
    for clone in (copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert clone == message and clone.render("de") == "Die Stromgrenze muss mindestens 6 sein"


def catalogs(tmp_path: Path, german: dict[str, str] | str) -> Catalogs:
    (tmp_path / "en.json").write_text(json.dumps({"a": "limit {limit:g} A", "b": "plain", "format.decimal_separator":
                                                  "."}), encoding="utf-8")
    (tmp_path / "de.json").write_text(german if isinstance(german, str) else json.dumps(german), encoding="utf-8")
    return Catalogs(tmp_path)


def test_a_missing_translation_is_english_and_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shelf = catalogs(tmp_path, {"a": "Grenze {limit:g} A", "format.decimal_separator": ","})
    with caplog.at_level(logging.DEBUG, logger="gateway.i18n"):
        assert Message("a", {"limit": 16.5}, shelf).render("de", shelf) == "Grenze 16,5 A"
        assert Message("b", {}, shelf).render("de", shelf) == "plain"
        assert Message("b", {}, shelf).render("fr", shelf) == "plain"
    assert caplog.records == []


def test_a_broken_translation_is_english_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shelf = catalogs(tmp_path, {"a": "Grenze {grenze} A", "b": "{"})
    with caplog.at_level(logging.DEBUG, logger="gateway.i18n"):
        for _ in range(3):
            assert Message("a", {"limit": 16}, shelf).render("de", shelf) == "limit 16 A"
            assert Message("b", {}, shelf).render("de", shelf) == "plain"
    assert len(caplog.records) == 2 and all(r.levelno == logging.WARNING for r in caplog.records)


def test_an_unreadable_catalog(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shelf = catalogs(tmp_path, "{not json")
    with caplog.at_level(logging.DEBUG, logger="gateway.i18n"):
        assert Message("a", {"limit": 16}, shelf).render("de", shelf) == "limit 16 A"
        assert Message("b", {}, shelf).render("de", shelf) == "plain"
    assert len(caplog.records) == 1 and "de" in caplog.records[0].getMessage()
    (tmp_path / "en.json").write_text('["a list"]', encoding="utf-8")
    with pytest.raises(CatalogError):
        Catalogs(tmp_path).messages("en")


def test_operator_lines_in_the_terminal_language_and_english_in_journald_and_json(tmp_path: Path) -> None:
    record = logging.LogRecord("gateway.run", logging.INFO, __file__, 1, tr("cli.run.stopped"), None, None)
    with (tmp_path / "journal").open("w") as journal, (tmp_path / "terminal").open("w") as terminal:
        info = os.fstat(journal.fileno())
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert formatter_for("plain", terminal, env, "de").format(record).endswith(" INFO gateway.run: beendet")
        assert formatter_for("plain", journal, env, "de").format(record) == "<6>gateway.run: stopped"
        assert json.loads(formatter_for("json", terminal, env, "de").format(record))["message"] == "stopped"
    assert record.getMessage() == "stopped", "the record itself is untouched for other handlers"
