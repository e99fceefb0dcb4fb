"""The web API answers an installer in their language, over a real loopback HTTP server with the real supervisor.

The same refused request, once with ``Accept-Language: de`` and once without, gets the same status and ``field``
and the same meaning in German and in English; the page's language (its cookie) wins over the browser's; numbers
are written the German way; nothing but ``detail`` changes. The page's texts are served per language.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.web import WebRig, free_port, web_rig

from gateway.i18n.catalog import SHIPPED

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[WebRig]:
    async with web_rig(tmp_path) as rig:
        yield rig


@pytest.fixture
async def auth(rig: WebRig) -> dict[str, str]:
    return await rig.sign_in()


def refusal(response: httpx.Response, status: int, field: str | None, lang: str) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field and set(body) == {"detail", "field"}, body
    assert response.headers["content-language"] == lang
    detail: str = body["detail"]
    return detail


async def test_a_validation_message_in_german_and_in_english(rig: WebRig, auth: dict[str, str]) -> None:
    german = await rig.client.put("/api/network-limit", json={"limit_a": "lots"}, headers={**auth, **GERMAN})
    english = await rig.client.put("/api/network-limit", json={"limit_a": "lots"}, headers=auth)
    assert refusal(german, 422, "limit_a", "de") == "Die Stromgrenze muss eine Zahl sein"
    assert refusal(english, 422, "limit_a", "en") == "The limit must be a number"
    missing = await rig.client.put("/api/network-limit", json={}, headers={**auth, **GERMAN})
    assert refusal(missing, 422, "limit_a", "de") == "Die Stromgrenze fehlt"
    assert rig.supervisor.status().network_limit_a == 32


async def test_a_rule_refusal_in_german_with_german_numbers(rig: WebRig, auth: dict[str, str]) -> None:
    """The rule's words, the setting's name and its bound in German; the value with a decimal comma."""
    above = await rig.client.put("/api/network-limit", json={"limit_a": 150.5}, headers={**auth, **GERMAN})
    assert refusal(above, 422, "limit_a", "de") == ("Die Verbund-Stromgrenze muss zwischen 0 A und der "
                                                   "Anlagen-Stromgrenze (100 A) liegen; 150,5 A geht nicht")
    rule = await rig.client.put("/api/network-limit", json={"limit_a": 80}, headers={**auth, **GERMAN})
    assert refusal(rule, 422, "limit_a", "de").startswith(
        "Verbund-Stromgrenze: 80 A liegt über der Summe der Stromgrenzen der Ladepunkte")
    zero = await rig.client.put("/api/units/cp1/limit", json={"limit_a": 0}, headers={**auth, **GERMAN})
    assert refusal(zero, 422, "confirm_zero", "de").startswith("0 A stoppt das Laden an cp1;")
    follower = rig.follower("bay-3", 3, breaker_limit_a=40)
    breaker = await rig.client.post("/api/followers", json=follower, headers={**auth, **GERMAN})
    assert refusal(breaker, 422, "breaker_limit_a", "de") == (
        "bay-3, Absicherung: 40 A liegt über dem Nennstrom des Ladepunkts von 32 A")
    assert rig.supervisor.status().network_limit_a == 32 and len(rig.supervisor.status().units) == 2


async def test_the_probe_says_what_to_check_in_german(rig: WebRig, auth: dict[str, str]) -> None:
    nobody = rig.follower("bay-3", 3)
    nobody["transport"]["port"] = free_port()
    detail = refusal(await rig.client.post("/api/followers", json=nobody, headers={**auth, **GERMAN}),
                     422, "transport", "de")
    assert "keine Verbindung: Adresse und Port prüfen" in detail and "127.0.0.1" in detail, detail


async def test_the_page_choice_wins_over_the_browser_language(rig: WebRig, auth: dict[str, str]) -> None:
    body = {"limit_a": None}
    rig.client.cookies.set("powershare_lang", "en")
    chosen_english = await rig.client.put("/api/network-limit", json=body, headers={**auth, **GERMAN})
    assert refusal(chosen_english, 422, "limit_a", "en") == "The limit must be a number"
    rig.client.cookies.set("powershare_lang", "de")
    chosen_german = await rig.client.put("/api/network-limit", json=body, headers=auth)
    assert refusal(chosen_german, 422, "limit_a", "de") == "Die Stromgrenze muss eine Zahl sein"
    rig.client.cookies.set("powershare_lang", "xx")  # no such catalog: the browser's language decides
    assert refusal(await rig.client.put("/api/network-limit", json=body, headers={**auth, **GERMAN}),
                   422, "limit_a", "de") == "Die Stromgrenze muss eine Zahl sein"


async def test_sign_in_refusals_in_german(rig: WebRig) -> None:
    unsigned = await rig.client.put("/api/enabled", json={"enabled": True}, headers=GERMAN)
    assert refusal(unsigned, 401, None, "de") == "zuerst mit dem Installateur-Passwort anmelden"
    await rig.sign_in()
    wrong = await rig.client.post("/api/session", json={"password": "not the password"}, headers=GERMAN)
    assert refusal(wrong, 401, None, "de") == "falsches Passwort; der nächste Versuch ist in 1 Sekunde möglich"
    assert wrong.headers["retry-after"] == "1"


async def test_the_languages_and_the_pages_texts(rig: WebRig) -> None:
    languages = (await rig.client.get("/api/i18n", headers=GERMAN)).json()
    assert languages == {"lang": "de", "languages": [{"code": "en", "name": "English"},
                                                     {"code": "de", "name": "Deutsch"}]}
    assert (await rig.client.get("/api/i18n", headers={"Accept-Language": "fr, *;q=0.5"})).json()["lang"] == "en"
    german = (await rig.client.get("/api/i18n/de")).json()
    assert german["lang"] == "de" and german["messages"]["page.tabs.overview"] == "Übersicht"
    assert set(german["messages"]) == {i for i in SHIPPED.messages("en") if i.startswith("page.")}
    unknown = await rig.client.get("/api/i18n/xx", headers=GERMAN)
    assert refusal(unknown, 404, "lang", "de") == "keine Texte in der Sprache 'xx'"


async def test_the_page_loads_its_texts_before_its_script_and_has_a_language_switch(rig: WebRig) -> None:
    page = (await rig.client.get("/")).text
    assert page.index('<script src="/static/i18n.js" defer>') < page.index('<script src="/static/app.js" defer>')
    assert page.count('id="lang-switch"') == 1 and 'data-i18n="page.header.language"' in page
    script = await rig.client.get("/static/i18n.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/api/i18n" in script.text
