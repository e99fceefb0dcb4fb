"""Numbers typed into the installer's page, in a real headless Chromium against the real gateway.

A browser's own number field takes "12,5" in an English page as 125 (or as nothing), so a limit typed the way half
of Europe writes it could be sent ten times too high. The page reads every number itself: either mark is a
decimal mark, and a mark the page's language groups thousands with, followed by three digits ("1,000" in English,
"1.000" in German), is refused as ambiguous. These tests type into the fields as an installer would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.browser import By, Driver, Select, fill, needs_browser, open_browser, set_password, show, wait
from support.web import WebRig, web_rig

pytestmark = needs_browser

READ = "return i18n.number(arguments[0])"


def message(driver: Driver) -> str:
    text: str = driver.find_element(By.ID, "network-msg").text
    return text


def set_network(driver: Driver, typed: str) -> None:
    fill(driver, "network-limit", typed)
    driver.find_element(By.CSS_SELECTOR, "#network-form button").click()


async def test_a_decimal_comma_is_a_decimal_and_an_ambiguous_number_changes_nothing(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state") as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await asyncio.to_thread(type_numbers, driver, rig)
        finally:
            await asyncio.to_thread(driver.quit)


def type_numbers(driver: Driver, rig: WebRig) -> None:
    assert rig.web.setup_code is not None
    set_password(driver, rig.web.url, rig.web.setup_code)
    show(driver, "commission")

    set_network(driver, "12,5")
    wait(driver, lambda d: "Network limit set to 12.5 A" in message(d), "12,5 taken as 12.5 A")
    assert rig.supervisor.status().network_limit_a == 12.5

    set_network(driver, "1,000")
    wait(driver, lambda d: "as a number" in message(d), "1,000 refused as ambiguous in English")
    assert driver.find_element(By.ID, "network-limit").get_attribute("aria-invalid") == "true"
    assert rig.supervisor.status().network_limit_a == 12.5

    row = driver.find_element(By.CSS_SELECTOR, '.unit-limit[data-unit="cp2"]')
    row.find_element(By.TAG_NAME, "input").clear()
    row.find_element(By.TAG_NAME, "input").send_keys("9,5")
    row.find_element(By.TAG_NAME, "button").click()
    wait(driver, lambda d: "cp2: limit 9.5 A" in message(d), "a unit limit typed with a decimal comma")
    assert rig.supervisor.status().units[1].limit_a == 9.5

    # Every number field on the page is read by the page, not by the browser (the add-follower form and the
    # Commissioning view too).
    assert driver.execute_script("return document.querySelectorAll('input[type=number]').length") == 0
    cases = {"16": 16, "16.5": 16.5, "16,5": 16.5, " 7 ": 7, ",5": 0.5, "-3": -3, "1,000": None, "1.000": 1,
             "1,0000": 1, "16A": None, "1e3": None, "": None, "1,5,0": None, "0x10": None, "Infinity": None}
    got = {text: driver.execute_script(READ, text) for text in cases}
    assert got == cases

    Select(driver.find_element(By.ID, "lang-switch")).select_by_value("de")
    wait(driver, lambda d: d.execute_script("return document.documentElement.lang") == "de", "the page in German")
    assert driver.execute_script(READ, "1.000") is None and driver.execute_script(READ, "1,000") == 1
    set_network(driver, "13,5")
    wait(driver, lambda d: "13,5 A" in message(d), "13,5 taken as 13.5 A in German")
    assert rig.supervisor.status().network_limit_a == 13.5
    # What the page fills in, it writes the language's way too.
    driver.execute_script("document.activeElement.blur()")
    wait(driver, lambda d: d.find_element(By.ID, "network-limit").get_attribute("value") == "13,5",
         "the field showing 13,5")
    row = driver.find_element(By.CSS_SELECTOR, '.unit-limit[data-unit="cp2"]')
    assert row.find_element(By.TAG_NAME, "input").get_attribute("value") == "9,5"
