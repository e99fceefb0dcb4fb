"""The page names every limit source the API can report in words an installer reads, in every language the gateway
ships, never the API's raw word."""

from __future__ import annotations

import re

from support.paths import REPO

from gateway.core.limits import LimitSource
from gateway.faces.web.schemas import _SOURCE
from gateway.i18n.catalog import SHIPPED

APP_JS = REPO / "gateway" / "faces" / "web" / "static" / "app.js"


def test_every_limit_source_has_words_on_the_page_in_every_language() -> None:
    table = re.search(r"const SOURCE_TEXT = \{(.*?)\};", APP_JS.read_text(), re.S)
    assert table is not None, "app.js no longer has its SOURCE_TEXT table"
    worded = dict(re.findall(r"(\w+):\s*\"([^\"]+)\"", table.group(1)))
    reported = {_SOURCE[source] for source in LimitSource}
    raw = sorted(reported - set(worded))
    assert raw == [], f"sources the page would show as raw words: {raw}"
    assert "de" in SHIPPED.languages
    for lang in SHIPPED.languages:
        messages = SHIPPED.messages(lang)
        for source in reported:
            words = messages.get(worded[source], "")
            assert words.strip() and words != source, (lang, source, worded[source], words)
