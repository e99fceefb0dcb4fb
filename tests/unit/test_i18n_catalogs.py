"""The message catalogs can never break a message: every language has exactly English's ids, with the same
placeholders, every template renders, and every id the code, the page's script or its HTML uses exists.

Ids are found where the code names them: the first argument of ``tr("...")``, ``say("...")`` and ``msgid("...")``
in the gateway's Python sources (the keywords of a ``tr`` or ``say`` call must also be its template's
placeholders), ``t("...")`` in the page's scripts, and ``data-i18n`` attributes in its HTML. Every id outside
``page.*`` must be used somewhere; the page also builds some of its ids (``page.state.`` and the pilot state, a table
of limit sources), which a scan for literals cannot see, so ``page.*`` is exempt from that check.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import gateway
from gateway.i18n.catalog import DECIMAL_SEPARATOR, DEFAULT_LANGUAGE, LANGUAGE_NAME, SHIPPED
from gateway.i18n.text import Message, placeholders

SOURCES = Path(gateway.__file__).parent
STATIC = SOURCES / "faces" / "web" / "static"
ENGLISH = SHIPPED.messages(DEFAULT_LANGUAGE)
OTHERS = [lang for lang in SHIPPED.languages if lang != DEFAULT_LANGUAGE]
USED_BY_THE_CATALOG_ITSELF = {LANGUAGE_NAME, DECIMAL_SEPARATOR}
PAGE_PREFIX = "page."


def test_english_and_german_are_shipped() -> None:
    assert SHIPPED.languages[:1] == ("en",) and "de" in SHIPPED.languages
    for lang in SHIPPED.languages:
        path = SOURCES / "i18n" / "catalogs" / f"{lang}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        assert all(isinstance(v, str) and v.strip() for v in data.values()), f"{lang}: an empty text"


@pytest.mark.parametrize("lang", OTHERS)
def test_every_catalog_has_exactly_the_english_ids(lang: str) -> None:
    ids = set(SHIPPED.messages(lang))
    assert sorted(set(ENGLISH) - ids) == [], f"{lang} lacks these (they would show in English)"
    assert sorted(ids - set(ENGLISH)) == [], f"{lang} has ids English does not (never shown)"


@pytest.mark.parametrize("lang", OTHERS)
def test_every_translation_has_the_english_placeholders_and_format_specs(lang: str) -> None:
    wrong = {}
    for message_id, template in SHIPPED.messages(lang).items():
        if message_id in ENGLISH and placeholders(template) != placeholders(ENGLISH[message_id]):
            wrong[message_id] = (placeholders(ENGLISH[message_id]), placeholders(template))
    assert wrong == {}


def test_the_pages_texts_have_plain_placeholders_the_script_can_fill() -> None:
    for lang in SHIPPED.languages:
        for message_id, template in SHIPPED.messages(lang).items():
            if message_id.startswith(PAGE_PREFIX):
                assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) and not spec
                           for name, spec in placeholders(template).items()), (lang, message_id, template)
                assert "!" not in "".join(re.findall(r"\{[^}]*\}", template)), (lang, message_id, template)


@pytest.mark.parametrize("lang", SHIPPED.languages)
def test_every_template_renders(lang: str) -> None:
    """With a number for each placeholder that has a format spec and a word for the others, every message renders
    from its own catalog, not by falling back to English."""
    for message_id, template in SHIPPED.messages(lang).items():
        params: dict[str, object] = {name: 1.5 if spec else "x" for name, spec in placeholders(template).items()}
        rendered = Message(message_id, params).render(lang)
        assert rendered == template.format(**params).replace("1.5", "1" + SHIPPED.decimal_separator(lang) + "5"), \
            (lang, message_id)


def python_uses() -> tuple[dict[str, list[str]], list[str]]:
    """Message ids named in the gateway's sources, each with where; and the ``tr`` calls whose keywords differ from
    their template's placeholders."""
    found: dict[str, list[str]] = {}
    wrong: list[str] = []
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else \
                node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name not in ("tr", "say", "msgid"):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue  # an id a table holds: the table marks it with msgid
            where = f"{path.relative_to(SOURCES.parent)}:{node.lineno}"
            found.setdefault(first.value, []).append(where)
            if name != "msgid" and first.value in ENGLISH and all(k.arg for k in node.keywords):
                given = {k.arg for k in node.keywords}
                if given != set(placeholders(ENGLISH[first.value])):
                    wrong.append(f"{where}: {first.value} given {sorted(k for k in given if k)}")
    return found, wrong


def page_uses() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    patterns = {".js": r"""\bt\(\s*["']([a-z0-9_.]+)["']""", ".html": r"""\bdata-i18n(?:-[a-z-]+)?="([^"]+)\""""}
    for path in sorted(STATIC.iterdir()):
        pattern = patterns.get(path.suffix)
        if pattern is None:
            continue
        for match in re.finditer(pattern, path.read_text(encoding="utf-8")):
            found.setdefault(match.group(1), []).append(path.name)
    return found


def test_the_scans_find_the_uses() -> None:
    """The scans see a literal id, a table's id and the page's ids; otherwise the checks below prove nothing."""
    python, _ = python_uses()
    page = page_uses()
    assert "site.network_above_installation" in python and "web.label.limit_a" in python
    assert "page.header.language" in page
    assert len(python) > 100


def test_every_id_the_code_uses_exists_with_its_placeholders() -> None:
    python, wrong = python_uses()
    missing = {i: where for i, where in {**python, **page_uses()}.items() if i not in ENGLISH}
    assert missing == {}
    assert wrong == []


def test_every_message_outside_the_page_is_used() -> None:
    python, _ = python_uses()
    used = set(python) | set(page_uses()) | USED_BY_THE_CATALOG_ITSELF
    unused = sorted(i for i in ENGLISH if i not in used and not i.startswith(PAGE_PREFIX))
    assert unused == []
