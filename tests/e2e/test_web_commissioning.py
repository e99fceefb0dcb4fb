"""The Commissioning view in a real headless Chromium, at 6 and at 250 chargers, on a desktop and on a 390 px phone.

An installer sets everything the site file holds from the page: the installation limit, a circuit (added, renamed,
refused while it feeds a unit), one unit's breaker, phases, rotation and circuit (found by search among 250), the
site meter, the BMS face and its watchdog, the central system. An empty field is refused on the page; everything
else is the gateway's call, and its refusal shows in the gateway's words with the field highlighted (the same text
the API answers); what stops cars asks first. The 6-charger gateway runs as ``powershare run`` runs it, so the
page's restart is real: what waited for it is in force after it. Every touch target is 48 px at least, and nothing
runs off a phone's screen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import (
    DESKTOP,
    PHONE,
    TOUCH_TARGETS_JS,
    By,
    Driver,
    Select,
    fill,
    needs_browser,
    open_browser,
    screenshot,
    set_password,
    viewport,
    wait,
)
from support.gateway_run import PASSWORD, running_gateway
from support.web import fleet_rig, free_port

pytestmark = needs_browser
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
KEY = "correct-horse-battery-key"


class Gateway:
    """The gateway's API, read from the browser's thread (the gateway runs in the test's event loop)."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def get(self, path: str) -> Any:
        async def read() -> Any:
            response = await self._client.get(path)
            assert response.status_code == 200, response.text
            return response.json()
        return self._run(read())

    def listening(self, port: int) -> bool:
        async def connect() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True
        return self._run(connect())

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)


def text_of(driver: Driver, element_id: str) -> str:
    text: str = driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.textContent : ''", element_id)
    return text


def click(driver: Driver, css: str) -> None:
    element = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def submit(driver: Driver, form_id: str, message_id: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).textContent = ''", message_id)
    click(driver, f"#{form_id} button[type=submit]")


def shows(driver: Driver, message_id: str, words: str) -> str:
    return wait(driver, lambda d: words in text_of(d, message_id) and text_of(d, message_id),  # type: ignore[no-any-return]
                f"{words!r} in #{message_id}")


def invalid(driver: Driver, form_id: str) -> list[str]:
    names: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' [aria-invalid=true]')].map((e) => e.name)",
        form_id)
    return names


def dialog(driver: Driver, yes: bool) -> str:
    wait(driver, lambda d: d.execute_script("return document.getElementById('confirm-dialog').open"), "a confirmation")
    text: str = driver.find_element(By.ID, "confirm-text").text
    driver.find_element(By.ID, "confirm-yes" if yes else "confirm-no").click()
    wait(driver, lambda d: not d.execute_script("return document.getElementById('confirm-dialog').open"), "it closed")
    return text


def sign_in(driver: Driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "auth-button").text == "Sign in", "the sign-in button")
    driver.find_element(By.ID, "auth-button").click()
    wait(driver, lambda d: d.find_element(By.ID, "auth-dialog").get_attribute("open") is not None, "the dialog")
    fill(driver, "password", PASSWORD)
    driver.find_element(By.ID, "auth-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "add-profile").is_enabled(), "signed in")


def open_view(driver: Driver, units: int) -> None:
    click(driver, "#tab-commissioning")
    wait(driver, lambda d: d.find_element(By.ID, "view-commissioning").is_displayed(), "the Commissioning view")
    assert driver.execute_script("return location.hash") == "#/commissioning"
    wait(driver, lambda d: d.execute_script("return document.querySelectorAll('#cm-unit-list .cm-unit').length")
         == units and not d.find_element(By.ID, "cm-fields").get_attribute("disabled"), f"{units} units, unlocked")


def commission(driver: Driver, gw: Gateway, *, unit: int, refused_limit: int, limit: int, size: tuple[int, int],
               bms_port: int) -> None:
    """Every section of the view, as an installer goes through it."""
    units = len(gw.get("/api/commissioning")["units"])
    open_view(driver, units)
    before = gw.get("/api/commissioning")
    name = before["units"][unit]["id"]

    # the installation limit: empty refused here, a rule's refusal in the gateway's words, 0 A asks first
    fill(driver, "cm-installation", "")
    submit(driver, "cm-supply-form", "cm-supply-msg")
    shows(driver, "cm-supply-msg", "Enter the installation limit in amperes: the field is empty.")
    fill(driver, "cm-installation", str(refused_limit))
    submit(driver, "cm-supply-form", "cm-supply-msg")
    words = f"Network limit: {before['network_limit_a']:g} A is above the installation limit {refused_limit} A"
    shows(driver, "cm-supply-msg", words)
    assert invalid(driver, "cm-supply-form") == ["limit_a"]
    fill(driver, "cm-installation", "0")
    submit(driver, "cm-supply-form", "cm-supply-msg")
    assert "stops every car" in dialog(driver, yes=False)
    assert gw.get("/api/commissioning")["installation_limit_a"] == before["installation_limit_a"]
    fill(driver, "cm-installation", str(limit))
    submit(driver, "cm-supply-form", "cm-supply-msg")
    shows(driver, "cm-supply-msg", "Applied")
    assert gw.get("/api/status")["limit"]["installation_limit_a"] == limit

    # a circuit: below 6 A asks first, a bad name is the gateway's refusal, then added and renamed
    fill(driver, "cm-circuit-id", "hall-x")
    fill(driver, "cm-circuit-limit", "4")
    submit(driver, "cm-add-circuit", "cm-circuits-msg")
    assert "every car on it stops" in dialog(driver, yes=False)
    fill(driver, "cm-circuit-id", "hall x")
    fill(driver, "cm-circuit-limit", "50")
    submit(driver, "cm-add-circuit", "cm-circuits-msg")
    shows(driver, "cm-circuits-msg", "The name may hold only letters, digits")
    assert invalid(driver, "cm-add-circuit") == ["id"]
    fill(driver, "cm-circuit-id", "hall-x")
    submit(driver, "cm-add-circuit", "cm-circuits-msg")
    shows(driver, "cm-circuits-msg", "Circuit hall-x added.")
    click(driver, '#cm-tree [data-edit="hall-x"]')
    form = driver.find_element(By.ID, "cm-circuit-form")
    fill_in(driver, form, "id", "hall-y")
    fill_in(driver, form, "limit_a", "40")
    submit(driver, "cm-circuit-form", "cm-circuits-msg")
    shows(driver, "cm-circuits-msg", "Circuit hall-y saved.")
    assert ("hall-y", 40) in [(c["id"], c["limit_a"]) for c in gw.get("/api/commissioning")["circuits"]]

    # one unit's wiring, found by search
    fill(driver, "cm-unit-search", name)
    wait(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#cm-unit-list .cm-unit')].filter((r) => !r.hidden).map((r) => "
        "r.dataset.unit)") == [name], f"the search finds {name}")
    click(driver, f'#cm-unit-list [data-edit="{name}"]')
    form = driver.find_element(By.ID, "cm-wiring-form")
    fill_in(driver, form, "breaker_limit_a", "40")
    submit(driver, "cm-wiring-form", "cm-units-msg")
    shows(driver, "cm-units-msg", f"{name}, breaker limit: 40 A is above the unit's nameplate 32 A")
    assert invalid(driver, "cm-wiring-form") == ["breaker_limit_a"]
    fill_in(driver, form, "breaker_limit_a", "16")
    Select(form.find_element(By.NAME, "phases")).select_by_value("1")
    Select(form.find_element(By.NAME, "phase_rotation")).select_by_value("L2")
    Select(form.find_element(By.NAME, "circuit")).select_by_value("hall-y")
    submit(driver, "cm-wiring-form", "cm-units-msg")
    shows(driver, "cm-units-msg", f"{name}: wiring saved.")
    row = wait(driver, lambda d: d.execute_script(
        "return document.querySelector(`#cm-unit-list [data-unit='${arguments[0]}'] .cm-unit-wiring`).textContent",
        name), "the unit's new wiring")
    assert row == "breaker 16 A · 1 phase on L2 · hall-y", row
    wired = gw.get("/api/commissioning")["units"][unit]
    assert (wired["breaker_limit_a"], wired["phases"], wired["phase_rotation"], wired["circuit"]) == (16, 1, "L2",
                                                                                                     "hall-y")
    click(driver, '#cm-tree [data-remove="hall-y"]')
    click(driver, '#cm-tree [data-remove="hall-y"]')
    shows(driver, "cm-circuits-msg", f"circuit hall-y still feeds unit {name}: move them to another circuit first")

    # the site meter: the gateway's refusal, then saved for the restart
    form = driver.find_element(By.ID, "cm-meter-form")
    Select(form.find_element(By.NAME, "profile")).select_by_value("powershare-sim-meter")
    fill_in(driver, form, "host", "127.0.0.1")
    fill_in(driver, form, "port", str(free_port()))
    fill_in(driver, form, "limit_a", "63")
    fill_in(driver, form, "fallback_limit_a", "80")
    submit(driver, "cm-meter-form", "cm-meter-msg")
    shows(driver, "cm-meter-msg", "Site meter, fallback limit: 80 A is above the metered node's limit 63 A")
    assert invalid(driver, "cm-meter-form") == ["fallback_limit_a"]
    fill_in(driver, form, "fallback_limit_a", "16")
    submit(driver, "cm-meter-form", "cm-meter-msg")
    shows(driver, "cm-meter-msg", "Saved: applies when the gateway restarts.")
    shows(driver, "cm-restart-text", "Saved, applies when the gateway restarts: site meter.")

    # the BMS face and its watchdog
    form = driver.find_element(By.ID, "cm-bms-form")
    fill_in(driver, form, "host", "127.0.0.1")
    fill_in(driver, form, "port", str(bms_port))
    fill_in(driver, form, "unit_id", "0")
    submit(driver, "cm-bms-form", "cm-bms-msg")
    shows(driver, "cm-bms-msg", "The unit id must be at least 1")
    fill_in(driver, form, "unit_id", "3")
    fill_in(driver, form, "allow_write_from", "127.0.0.1, 10.0.9.0/24")
    submit(driver, "cm-bms-form", "cm-bms-msg")
    shows(driver, "cm-bms-msg", "Saved: applies when the gateway restarts.")
    form = driver.find_element(By.ID, "cm-watchdog-form")
    fill_in(driver, form, "timeout_s", "30")
    fill_in(driver, form, "fallback_limit_a", "4")
    submit(driver, "cm-watchdog-form", "cm-watchdog-msg")
    assert "no car charges while the BMS writes nothing" in dialog(driver, yes=True)
    shows(driver, "cm-watchdog-msg", "Watchdog 30 s, 4 A while the BMS is silent.")
    assert gw.get("/api/status")["limit"]["bms_watchdog_s"] == 30

    # the central system: the key is asked for here, kept after, never shown
    form = driver.find_element(By.ID, "cm-ocpp-form")
    fill_in(driver, form, "url", f"ws://127.0.0.1:{free_port()}/ocpp")
    fill_in(driver, form, "charge_point_id", "car-park-b")
    Select(form.find_element(By.NAME, "security_profile")).select_by_value("1")
    submit(driver, "cm-ocpp-form", "cm-ocpp-msg")
    shows(driver, "cm-ocpp-msg", "Enter the AuthorizationKey")
    fill_in(driver, form, "password", KEY)
    submit(driver, "cm-ocpp-form", "cm-ocpp-msg")
    shows(driver, "cm-ocpp-msg", "Saved: applies when the gateway restarts.")
    assert form.find_element(By.NAME, "password").get_attribute("value") == ""
    assert "kept on the gateway" in form.find_element(By.NAME, "password").get_attribute("placeholder")
    shows(driver, "cm-restart-text", "site meter, BMS face, central system")
    assert KEY not in driver.page_source

    small = driver.execute_script(TOUCH_TARGETS_JS)
    assert small == [], f"touch targets under 48 px at {size[0]} px: {small}"
    width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the view runs off the screen: {width}"


def fill_in(driver: Driver, form: Any, name: str, text: str) -> None:
    field = form.find_element(By.NAME, name)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.clear()
    field.send_keys(text)


def restart(driver: Driver, gw: Gateway, bms_port: int) -> None:
    assert not gw.listening(bms_port)
    click(driver, "#cm-restart-button")
    assert "sign in again" in dialog(driver, yes=True)
    wait(driver, lambda d: "Restarted with the saved settings" in text_of(d, "cm-restart-msg"), "the restart")
    assert gw.get("/api/commissioning")["restart_needed"] == []
    wait(driver, lambda d: d.find_element(By.ID, "cm-restart").get_attribute("hidden") is not None,
         "nothing waits for a restart")
    assert gw.listening(bms_port), "the BMS face saved on the page is in force"
    assert driver.find_element(By.ID, "cm-fields").get_attribute("disabled") is not None, "signed out by it"
    assert "(saved;" not in text_of(driver, "cm-meter-now")


@SIZES
async def test_six_chargers_commissioned_from_the_page_and_restarted(tmp_path: Path, size: tuple[int, int]) -> None:
    async with running_gateway(tmp_path, configured=6, units=6) as rig:
        gw = Gateway(rig.client, asyncio.get_running_loop())
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        bms_port = free_port()
        try:
            await asyncio.to_thread(viewport, driver, *size)
            await asyncio.to_thread(sign_in, driver, str(rig.client.base_url) + "/")
            await asyncio.to_thread(commission, driver, gw, unit=2, refused_limit=20, limit=90, size=size,
                                    bms_port=bms_port)
            await keep(driver, size, "web-commissioning-desktop.png" if size == DESKTOP else None, "#cm-title")
            await asyncio.to_thread(restart, driver, gw, bms_port)
        finally:
            await asyncio.to_thread(driver.quit)


@SIZES
async def test_250_chargers_commissioned_from_the_page(tmp_path: Path, size: tuple[int, int]) -> None:
    async with fleet_rig(tmp_path / "state", 250) as rig:
        gw = Gateway(rig.client, asyncio.get_running_loop())
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await asyncio.to_thread(viewport, driver, *size)
            assert rig.web.setup_code is not None
            await asyncio.to_thread(set_password, driver, rig.web.url, rig.web.setup_code)
            await asyncio.to_thread(commission, driver, gw, unit=248, refused_limit=390, limit=450, size=size,
                                    bms_port=free_port())
            assert await asyncio.to_thread(text_of, driver, "cm-restart-how") != ""
            hidden = await asyncio.to_thread(driver.execute_script,
                                             "return document.getElementById('cm-restart-button').hidden")
            assert hidden, "a gateway not run by `powershare run` offers no restart button, it says how"
            await keep(driver, size, "web-phone-commissioning-250.png" if size == PHONE else None, "#cm-units")
        finally:
            await asyncio.to_thread(driver.quit)


async def keep(driver: Driver, size: tuple[int, int], name: str | None, anchor: str) -> None:
    """The screenshot for docs/web.md (POWERSHARE_SCREENSHOTS=docs/img)."""
    folder = os.environ.get("POWERSHARE_SCREENSHOTS")
    if folder and name:
        await asyncio.to_thread(screenshot, driver, Path(folder) / name, *size, mobile=size == PHONE,
                                whole_page=False, scroll_to=anchor)



SIGN_IN_JS = """
const done = arguments[arguments.length - 1];
fetch('/api/session', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                       body: JSON.stringify({password: arguments[0]})}).then((r) => done(r.status));
"""


async def test_the_commissioning_view_speaks_the_pages_language(tmp_path: Path) -> None:
    """A German browser gets the view in German: its texts, the page's own refusals and the gateway's."""
    async with running_gateway(tmp_path) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium", "de-DE,de")
        try:
            await asyncio.to_thread(in_german, driver, str(rig.client.base_url) + "/")
        finally:
            await asyncio.to_thread(driver.quit)


def in_german(driver: Driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.documentElement.lang") == "de", "the page in German")
    assert driver.execute_async_script(SIGN_IN_JS, PASSWORD) == 200
    driver.refresh()
    wait(driver, lambda d: d.find_element(By.ID, "tab-commissioning").text == "Inbetriebnahme", "the tab in German")
    open_view(driver, 2)
    assert driver.find_element(By.ID, "cm-circuits-title").text == "Stromkreise"
    fill(driver, "cm-installation", "")
    submit(driver, "cm-supply-form", "cm-supply-msg")
    shows(driver, "cm-supply-msg", "Die Anlagen-Stromgrenze in Ampere eingeben: das Feld ist leer.")
    fill(driver, "cm-installation", "20")
    submit(driver, "cm-supply-form", "cm-supply-msg")
    shows(driver, "cm-supply-msg", "Verbund-Stromgrenze: 32 A liegt über der Anlagen-Stromgrenze von 20 A")
    fill(driver, "cm-circuit-id", "halle")
    fill(driver, "cm-circuit-limit", "4.5")
    submit(driver, "cm-add-circuit", "cm-circuits-msg")
    assert "Unter 6 A kann an halle kein Fahrzeug laden" in dialog(driver, yes=False)
