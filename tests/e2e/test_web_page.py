"""The installer's page is safe to touch and tells the truth, on a desktop and on a 390 px phone.

Each finding of the page review has its check here, in a real headless Chromium against the real gateway: an
emptied or mistyped limit field never becomes 0 A, 0 A and "Disable" stop cars only after a confirmation, a unit
that stops answering is shown as unknown and counted at its booked current, the first paint does not contradict
itself, the header does not overlap on a phone, messages are in an installer's words, and every touch target is
at least 48 px.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from support.browser import (
    DESKTOP,
    OVERLAP_JS,
    PHONE,
    TOUCH_TARGETS_JS,
    By,
    Driver,
    Select,
    card_text,
    fill,
    needs_browser,
    open_browser,
    screenshot,
    set_password,
    show,
    viewport,
    wait,
)
from support.web import WebRig, car, fleet_rig, until, web_rig

from drivers.sim.faults import Fault, FaultKind

pytestmark = needs_browser
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])

async def browse(tmp_path: Path, size: tuple[int, int], rig: WebRig) -> Driver:
    driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
    await asyncio.to_thread(viewport, driver, *size)
    assert rig.web.setup_code is not None
    await asyncio.to_thread(set_password, driver, rig.web.url, rig.web.setup_code)
    await asyncio.to_thread(wait, driver, lambda d: d.find_elements(By.CSS_SELECTOR, '.unit[data-unit="cp2"]'),
                            "the units' cards")
    return driver


def message(driver: Driver, element_id: str = "network-msg") -> str:
    text: str = driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)
    return text


def dialog_open(driver: Driver) -> bool:
    return bool(driver.execute_script("return document.getElementById('confirm-dialog').open"))


def answer_dialog(driver: Driver, yes: bool) -> None:
    wait(driver, dialog_open, "the confirmation dialog")
    driver.find_element(By.ID, "confirm-yes" if yes else "confirm-no").click()
    wait(driver, lambda d: not dialog_open(d), "the dialog closed")


def set_network_limit(driver: Driver, text: str) -> None:
    driver.execute_script("document.getElementById('network-limit').scrollIntoView({block: 'center'})")
    fill(driver, "network-limit", text)
    driver.execute_script("document.getElementById('network-msg').textContent = ''")
    driver.find_element(By.CSS_SELECTOR, "#network-form button").click()


def unit_limit_row(driver: Driver, unit: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, f'.unit-limit[data-unit="{unit}"]')


@SIZES
async def test_an_empty_or_mistyped_limit_is_refused_and_zero_needs_a_confirmation(
        tmp_path: Path, size: tuple[int, int]) -> None:
    async with web_rig(tmp_path / "state", configured=2, units=2) as rig:
        driver = await browse(tmp_path, size, rig)
        try:
            await asyncio.to_thread(check_limits, driver, rig)
            status = rig.supervisor.status()
            assert status.network_limit_a == 0 and status.units[1].limit_a == 32
        finally:
            await asyncio.to_thread(driver.quit)


def check_limits(driver: Driver, rig: WebRig) -> None:
    show(driver, "commission")
    refusals = (("", "the field is empty"), ("1e", "as a number"), ("abc", "as a number"), ("12,5 A", "as a number"))
    for typed, expected in refusals:
        set_network_limit(driver, typed)
        wait(driver, lambda d, e=expected: e in message(d), f"the refusal of {typed!r}")  # type: ignore[misc]
        assert driver.find_element(By.ID, "network-limit").get_attribute("aria-invalid") == "true"
        assert rig.supervisor.status().network_limit_a == 32, f"{typed!r} changed the network limit"

    set_network_limit(driver, "150")
    wait(driver, lambda d: "installation limit (100 A)" in message(d), "the gateway's refusal of 150 A")
    assert "limit_a" not in message(driver) and "_a" not in message(driver)

    set_network_limit(driver, "0")
    answer_dialog(driver, yes=False)
    assert rig.supervisor.status().network_limit_a == 32, "cancelled: nothing changes"
    assert "Network limit set" not in message(driver)
    set_network_limit(driver, "0")
    answer_dialog(driver, yes=True)
    wait(driver, lambda d: "Network limit set to 0 A" in message(d), "0 A, confirmed")

    row = unit_limit_row(driver, "cp2")
    field = row.find_element(By.TAG_NAME, "input")
    field.clear()
    row.find_element(By.TAG_NAME, "button").click()
    wait(driver, lambda d: "the field is empty" in message(d), "the refusal of an empty unit limit")
    field.send_keys("0")
    row.find_element(By.TAG_NAME, "button").click()
    answer_dialog(driver, yes=False)
    assert rig.supervisor.status().units[1].limit_a == 32


@SIZES
async def test_disabling_power_sharing_asks_first(tmp_path: Path, size: tuple[int, int]) -> None:
    async with web_rig(tmp_path / "state", configured=2, units=2) as rig:
        driver = await browse(tmp_path, size, rig)
        try:
            await asyncio.to_thread(show, driver, "commission")
            button = await asyncio.to_thread(driver.find_element, By.ID, "enable-button")
            await asyncio.to_thread(driver.execute_script, "arguments[0].scrollIntoView({block: 'center'})", button)
            await asyncio.to_thread(button.click)
            await until(lambda: rig.supervisor.status().enabled)
            await asyncio.to_thread(wait, driver, lambda d: "Disable" in d.find_element(By.ID, "enable-button").text,
                                    "the Disable button")
            await asyncio.to_thread(button.click)
            await asyncio.to_thread(answer_dialog, driver, False)
            await asyncio.sleep(0.5)
            assert rig.supervisor.status().enabled, "cancelled: sharing stays on"
            await asyncio.to_thread(button.click)
            await asyncio.to_thread(answer_dialog, driver, True)
            await until(lambda: not rig.supervisor.status().enabled)
        finally:
            await asyncio.to_thread(driver.quit)


@SIZES
async def test_a_unit_that_stops_answering_is_shown_unknown_and_counted_booked(tmp_path: Path,
                                                                               size: tuple[int, int]) -> None:
    async with web_rig(tmp_path / "state", configured=2, units=2) as rig:
        assert rig.line.server is not None
        driver = await browse(tmp_path, size, rig)
        try:
            headers = {"X-CSRF-Token": await asyncio.to_thread(
                driver.execute_script, "return app.auth.csrf_token")}
            cookie = await asyncio.to_thread(driver.get_cookie, "powershare_session")
            rig.client.cookies.set("powershare_session", cookie["value"])
            assert (await rig.client.put("/api/enabled", json={"enabled": True}, headers=headers)).status_code == 200
            rig.chargers[0].plug(car("a"))
            await until(lambda: rig.supervisor.status().units[0].current_a[0] > 5, timeout_s=10)
            rig.line.server.set_fault(1, Fault(FaultKind.SILENT))
            await until(lambda: not rig.supervisor.status().units[0].answering, timeout_s=10)
            def booked() -> float:
                return max(rig.supervisor.status().units[0].booked_a)

            def shown(d: Driver) -> str | bool:
                text = card_text(d, "cp1")
                return "not answering" in text and f"counted at {booked():.1f} A" in text and text

            text = await asyncio.to_thread(wait, driver, shown, "cp1 shown as not answering, at its booked current")
            assert "0.0 A" not in text, f"a silent unit is not drawing 0.0 A: {text}"
            await asyncio.to_thread(wait, driver, lambda d: float(d.find_element(By.ID, "drawn-value").text.split()[0])
                                    >= booked() - 0.05, "drawn now counting cp1 at its booked current")
            note = await asyncio.to_thread(lambda: driver.find_element(By.ID, "drawn-note").text)
            assert "1 not answering" in note
            await asyncio.to_thread(wait, driver, lambda d: d.execute_script("return Math.max(...app.history.at(-1).m)")
                                    >= booked() - 0.05, "the chart counting the silent unit too")
        finally:
            await asyncio.to_thread(driver.quit)


@SIZES
async def test_first_paint_header_messages_and_touch_targets(tmp_path: Path, size: tuple[int, int]) -> None:
    async with web_rig(tmp_path / "state", configured=2, units=3) as rig:
        page = (await rig.client.get("/")).text
        assert "No followers yet" not in page and "Waiting for the gateway" in page, "the first paint claims none"
        driver = await browse(tmp_path, size, rig)
        try:
            await asyncio.to_thread(check_page, driver, rig, size)
        finally:
            await asyncio.to_thread(driver.quit)


def check_page(driver: Driver, rig: WebRig, size: tuple[int, int]) -> None:
    assert not driver.find_elements(By.CSS_SELECTOR, "#units .empty"), "units and an empty note at once"
    assert driver.execute_script(OVERLAP_JS) == []
    driver.execute_script("setConnection('wait', 'page.header.connecting')")  # the longest texts the pill shows
    assert driver.execute_script(OVERLAP_JS) == [], "connecting… overlaps the title"
    driver.execute_script("setConnection('wait', 'page.header.reconnecting')")
    assert driver.execute_script(OVERLAP_JS) == [], "reconnecting… overlaps the title"

    small = driver.execute_script(TOUCH_TARGETS_JS)
    assert small == [], f"touch targets under 48 px on the overview at {size[0]} px: {small}"
    show(driver, "commission")
    driver.execute_script("document.querySelector('#add-form details').open = true")
    fill(driver, "add-id", "bay-3")
    Select(driver.find_element(By.ID, "add-profile")).select_by_value("powershare-sim")
    Select(driver.find_element(By.ID, "add-type")).select_by_value("tcp")
    fill(driver, "add-host", "127.0.0.1")
    fill(driver, "add-port", str(rig.modbus_port))
    fill(driver, "add-unit", "3")
    driver.find_element(By.ID, "add-submit").click()
    wait(driver, lambda d: "bay-3 answered" in message(d, "add-msg"), "bay-3 added")
    text = message(driver, "add-msg")
    assert "no car" in text and " ms" in text, text
    for raw in (": A,", ": B,", ": C,"):
        assert raw not in text, f"a raw state letter: {text}"

    small = driver.execute_script(TOUCH_TARGETS_JS)
    assert small == [], f"touch targets under 48 px at {size[0]} px: {small}"
    driver.find_element(By.CSS_SELECTOR, '.follower button[data-remove="bay-3"]').click()
    small = driver.execute_script(TOUCH_TARGETS_JS)
    assert small == [], f"touch targets under 48 px (Remove armed) at {size[0]} px: {small}"



async def test_250_chargers_on_a_phone_summary_groups_filters_and_views(tmp_path: Path) -> None:
    """250 chargers on five boards: the phone shows the summary and chart first, a compact list grouped by circuit,
    and finds a unit by name or by what it is doing; commissioning is a view of its own (hash route, Back works)."""
    async with fleet_rig(tmp_path / "state", 250) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await asyncio.to_thread(viewport, driver, *PHONE)
            await asyncio.to_thread(driver.get, rig.web.url)
            await asyncio.to_thread(check_fleet, driver)
            keep = os.environ.get("POWERSHARE_SCREENSHOTS")
            if keep:
                await asyncio.to_thread(screenshot, driver, Path(keep) / "web-phone-250.png", *PHONE, mobile=True,
                                        whole_page=False)
        finally:
            await asyncio.to_thread(driver.quit)


def check_fleet(driver: Driver) -> None:
    wait(driver, lambda d: d.execute_script("return document.querySelectorAll('#units .unit.row').length") == 250,
         "250 units in the compact list")
    driver.execute_script("document.getElementById('auth-dialog').close()")
    tops = driver.execute_script("return ['.tiles', '#chart', '#units'].map("
                                 "(s) => document.querySelector(s).getBoundingClientRect().top)")
    assert tops[0] < tops[1] < tops[2], f"summary, then chart, then the list on a phone: {tops}"
    groups = driver.execute_script("return [...document.querySelectorAll('#units .group')].map("
                                   "(g) => [g.dataset.circuit, g.querySelectorAll('.unit').length])")
    assert groups == [[f"board-{i}", 50] for i in range(1, 6)], groups
    row_height = driver.execute_script("return document.querySelector('#units .unit.row').getBoundingClientRect()"
                                       ".height")
    assert 48 <= row_height <= 80, f"a compact row is one touch target high: {row_height} px"

    fill(driver, "unit-search", "cp007")
    wait(driver, lambda d: d.execute_script("return [...document.querySelectorAll('#units .unit')].map("
                                            "(u) => u.dataset.unit)") == ["cp007"], "the search finds cp007")
    fill(driver, "unit-search", "board-2")
    wait(driver, lambda d: d.execute_script("return document.querySelectorAll('#units .unit').length") == 50,
         "the search finds a circuit's units")
    driver.find_element(By.ID, "unit-search").clear()
    driver.execute_script("document.getElementById('unit-search').dispatchEvent(new Event('input'))")

    wait(driver, lambda d: int(d.find_element(By.ID, "count-charging").text) > 0, "units charging")
    driver.find_element(By.CSS_SELECTOR, '[data-filter="charging"]').click()
    wait(driver, lambda d: d.execute_script(
        "const rows = [...document.querySelectorAll('#units .unit')];"
        "return rows.length > 0 && rows.every((r) => r.classList.contains('charging'))"), "only charging units")
    driver.find_element(By.CSS_SELECTOR, '[data-filter="unavailable"]').click()
    wait(driver, lambda d: "No charger matches" in d.find_element(By.ID, "units").text, "none not answering")
    driver.find_element(By.CSS_SELECTOR, '[data-filter="all"]').click()

    show(driver, "commission")
    assert driver.execute_script("return location.hash") == "#/commission"
    assert not driver.find_element(By.ID, "units").is_displayed()
    driver.back()
    wait(driver, lambda d: d.find_element(By.ID, "view-overview").is_displayed(), "Back returns to the overview")
