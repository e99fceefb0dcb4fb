"""The page's language, in a real headless Chromium against the real gateway: the switch in the header turns the
page German, the choice survives a reload and reaches the gateway's own answers; a browser that asks for German
gets it without choosing; a fresh English browser stays English.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.browser import By, Driver, Select, needs_browser, open_browser, wait
from support.web import WebRig, web_rig

pytestmark = needs_browser

LABEL = "document.querySelector('[data-i18n=\"page.header.language\"]').textContent"
GATEWAY_REFUSAL = """
const done = arguments[arguments.length - 1];
fetch('/api/units/nope', {credentials: 'same-origin'}).then((r) => r.json()).then((b) => done(b.detail));
"""


def label(driver: Driver) -> str:
    text: str = driver.execute_script(f"return {LABEL}")
    return text


def switch_ready(driver: Driver) -> bool:
    return len(Select(driver.find_element(By.ID, "lang-switch")).options) >= 2


async def test_switching_to_german_translates_and_survives_a_reload(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state") as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await asyncio.to_thread(switch_to_german, driver, rig)
        finally:
            await asyncio.to_thread(driver.quit)


def switch_to_german(driver: Driver, rig: WebRig) -> None:
    driver.get(rig.web.url)
    wait(driver, switch_ready, "the language switch with every language")
    assert label(driver) == "Language" and driver.execute_script("return document.documentElement.lang") == "en"
    assert [o.text for o in Select(driver.find_element(By.ID, "lang-switch")).options] == ["EN", "DE"]
    driver.execute_script("document.getElementById('auth-dialog').close()")  # the set-password dialog is modal

    Select(driver.find_element(By.ID, "lang-switch")).select_by_value("de")
    wait(driver, lambda d: label(d) == "Sprache", "the header's label in German")
    assert driver.execute_script("return document.documentElement.lang") == "de"
    assert driver.execute_script("return i18n.t('page.tabs.overview')") == "Übersicht"
    assert driver.execute_script("return i18n.t('page.limits.range', {max: 16.5})") == "0 bis 16,5 A"
    assert driver.get_cookie("powershare_lang")["value"] == "de"
    assert driver.execute_async_script(GATEWAY_REFUSAL) == "kein Ladepunkt 'nope' an diesem Standort"

    driver.refresh()
    wait(driver, lambda d: label(d) == "Sprache", "German after a reload")
    assert driver.find_element(By.ID, "lang-switch").get_attribute("value") == "de"

    driver.execute_script("document.getElementById('auth-dialog').close()")
    Select(driver.find_element(By.ID, "lang-switch")).select_by_value("en")
    wait(driver, lambda d: label(d) == "Language", "back to English")
    assert driver.execute_async_script(GATEWAY_REFUSAL) == "no unit 'nope' on this site"


async def test_a_german_browser_gets_german_without_choosing(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state") as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium", "de-DE,de")
        try:
            await asyncio.to_thread(driver.get, rig.web.url)
            await asyncio.to_thread(wait, driver, lambda d: label(d) == "Sprache", "German from Accept-Language")
            assert await asyncio.to_thread(driver.get_cookie, "powershare_lang") is None, "nothing was chosen"
            value = await asyncio.to_thread(lambda: driver.find_element(By.ID, "lang-switch").get_attribute("value"))
            assert value == "de"
        finally:
            await asyncio.to_thread(driver.quit)
