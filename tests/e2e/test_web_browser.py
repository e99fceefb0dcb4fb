"""The installer's page in a real headless Chromium: commission a simulated network from scratch and see current flow.

The gateway (supervisor, Modbus drivers, web server) and the simulated chargers run in the test's event loop; the
browser is driven through chromedriver (selenium) from a worker thread, so the loop keeps serving while the
browser waits. Set POWERSHARE_SCREENSHOTS=DIR to keep the desktop and phone screenshots (docs/img is made so).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from support.browser import (
    By,
    Driver,
    add_follower,
    card_setpoint,
    card_text,
    fill,
    needs_browser,
    open_browser,
    screenshot,
    set_password,
    show,
    wait,
)
from support.web import WebRig, car, until, web_rig

from drivers.sim.faults import Fault, FaultKind

pytestmark = needs_browser

def commission(driver: Driver, url: str, setup_code: str, port: int) -> None:
    """The seed's steps in order: password, 1 add followers, 2 set limits, 3 enable."""
    set_password(driver, url, setup_code)
    show(driver, "commission")
    message = driver.find_element(By.ID, "add-msg")
    for name, unit in (("bay-1", 1), ("bay-2", 2), ("bay-3", 3)):
        add_follower(driver, name, port, unit)

    fill(driver, "add-id", "ghost")
    fill(driver, "add-unit", "9")
    driver.find_element(By.ID, "add-submit").click()
    wait(driver, lambda d: "not for this unit id" in message.text, "the refusal of a unit that does not answer")
    assert "err" in (message.get_attribute("class") or "")

    limit = driver.find_element(By.ID, "network-limit")
    limit.clear()
    limit.send_keys("40")
    driver.find_element(By.CSS_SELECTOR, "#network-form button").click()
    wait(driver, lambda d: "Network limit set to 40 A" in d.find_element(By.ID, "network-msg").text,
         "network limit confirmed")
    row = driver.find_element(By.CSS_SELECTOR, '.unit-limit[data-unit="bay-2"]')
    row.find_element(By.TAG_NAME, "input").clear()
    row.find_element(By.TAG_NAME, "input").send_keys("16")
    row.find_element(By.TAG_NAME, "button").click()
    wait(driver, lambda d: "bay-2: limit 16 A" in d.find_element(By.ID, "network-msg").text, "unit limit")

    driver.find_element(By.ID, "enable-button").click()
    wait(driver, lambda d: "Power sharing enabled" in d.find_element(By.ID, "enable-msg").text, "sharing on")
    show(driver, "overview")
    wait(driver, lambda d: d.find_element(By.ID, "sharing-value").text == "On", "sharing on, at a glance")


async def test_an_installer_commissions_a_network_from_the_page_and_current_flows(tmp_path: Path) -> None:
    async with web_rig(tmp_path / "state", configured=0, units=3) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await run_commissioning(rig, driver, tmp_path)
        finally:
            await asyncio.to_thread(driver.quit)


async def run_commissioning(rig: WebRig, driver: Driver, tmp_path: Path) -> None:
    assert rig.web.setup_code is not None
    await asyncio.to_thread(commission, driver, rig.web.url, rig.web.setup_code, rig.modbus_port)
    status = rig.supervisor.status()
    assert [u.id for u in status.units] == ["bay-1", "bay-2", "bay-3"]
    assert status.enabled and status.network_limit_a == 40 and status.units[1].limit_a == 16

    rig.chargers[0].plug(car("a"))
    await until(lambda: rig.chargers[0].setpoint_a > 0, timeout_s=10)
    await asyncio.sleep(2)
    rig.chargers[1].plug(car("b", limit=10))
    await until(lambda: rig.chargers[1].setpoint_a > 0, timeout_s=10)
    await asyncio.to_thread(wait, driver, lambda d: card_setpoint(d, "bay-1") > 0 and card_setpoint(d, "bay-2") > 0,
                            "a setpoint above 0 A on the charging units' cards")
    shown = await asyncio.to_thread(card_setpoint, driver, "bay-2")
    assert 0 < shown <= 16, "bay-2 is limited to 16 A"
    await asyncio.to_thread(wait, driver, lambda d: "charging" in card_text(d, "bay-1"), "bay-1 charging")

    assert rig.line.server is not None
    rig.line.server.set_fault(3, Fault(FaultKind.SILENT))
    await asyncio.to_thread(wait, driver, lambda d: "Not answering: no answer in time" in card_text(d, "bay-3"),
                            "bay-3 unavailable with its reason")
    await asyncio.to_thread(show, driver, "events")
    events = await asyncio.to_thread(lambda: driver.find_element(By.ID, "events").text)
    assert "follower bay-1 added" in events and "web installer@127.0.0.1" in events

    await asyncio.sleep(3)  # a few more points on the chart
    keep = os.environ.get("POWERSHARE_SCREENSHOTS")
    out = Path(keep) if keep else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    shots = {"web-desktop.png": ("overview", 1280, 900, False, True),
             "web-phone.png": ("overview", 390, 844, True, False),
             "web-phone-commissioning.png": ("commission", 390, 844, True, False)}
    for name, (view, width, height, mobile, whole) in shots.items():
        await asyncio.to_thread(show, driver, view)
        await asyncio.to_thread(screenshot, driver, out / name, width, height, mobile=mobile, whole_page=whole)
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
