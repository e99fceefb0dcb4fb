"""The installer's page in a real headless Chromium: commission a simulated network from scratch and see current flow.

The gateway (supervisor, Modbus drivers, web server) and the simulated chargers run in the test's event loop; the
browser is driven through chromedriver (selenium) from a worker thread, so the loop keeps serving while the
browser waits. Set POWERSHARE_SCREENSHOTS=DIR to keep the desktop and phone screenshots (docs/img is made so).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.web import WebRig, car, until, web_rig

from drivers.sim.faults import Fault, FaultKind

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
WAIT_S = 15.0

Driver = Any  # selenium's WebDriver; selenium is an optional (test) dependency


def open_browser(profile_dir: Path) -> Driver:
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1280,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait(driver: Driver, condition: Callable[[Driver], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition)
    except TimeoutException:
        messages = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".msg") if e.text]
        raise AssertionError(f"page never showed: {what}; messages on the page: {messages}") from None


def fill(driver: Driver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def set_password(driver: Driver, url: str, setup_code: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.ID, "auth-dialog").get_attribute("open") is not None,
         "the set-password dialog")
    assert "Set the installer password" in driver.find_element(By.ID, "auth-title").text
    fill(driver, "setup-code", setup_code)
    fill(driver, "password", "car park password")
    fill(driver, "password2", "car park password")
    driver.find_element(By.ID, "auth-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "add-profile").is_enabled(), "commissioning unlocked")


def add_follower(driver: Driver, name: str, port: int, unit: int) -> None:
    wait(driver, lambda d: len(Select(d.find_element(By.ID, "add-profile")).options) > 1, "the profile list")
    Select(driver.find_element(By.ID, "add-profile")).select_by_value("powershare-sim")
    Select(driver.find_element(By.ID, "add-type")).select_by_value("tcp")
    fill(driver, "add-id", name)
    fill(driver, "add-host", "127.0.0.1")
    fill(driver, "add-port", str(port))
    fill(driver, "add-unit", str(unit))
    driver.find_element(By.ID, "add-submit").click()
    wait(driver, lambda d: f"{name} answered" in d.find_element(By.ID, "add-msg").text, f"{name} added")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'.unit[data-unit="{name}"]'), f"{name}'s card")


def commission(driver: Driver, url: str, setup_code: str, port: int) -> None:
    """The seed's steps in order: password, 1 add followers, 2 set limits, 3 enable."""
    set_password(driver, url, setup_code)
    message = driver.find_element(By.ID, "add-msg")
    for name, unit in (("bay-1", 1), ("bay-2", 2), ("bay-3", 3)):
        add_follower(driver, name, port, unit)

    fill(driver, "add-id", "ghost")
    fill(driver, "add-unit", "9")
    driver.find_element(By.ID, "add-submit").click()
    wait(driver, lambda d: "did not" in message.text, "the refusal of a unit that does not answer")
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
    wait(driver, lambda d: d.find_element(By.ID, "sharing-value").text == "On", "sharing on")


def card_text(driver: Driver, name: str, selector: str = "") -> str:
    """Read in one go: the cards are redrawn as snapshots arrive, so a found element may be gone a moment later."""
    text: str = driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.innerText : '';",
        f'.unit[data-unit="{name}"] {selector}'.strip())
    return text


def card_setpoint(driver: Driver, name: str) -> float:
    return float(card_text(driver, name, ".setpoint-value") or "nan")


def screenshot(driver: Driver, path: Path, width: int, height: int, *, mobile: bool, whole_page: bool,
               scroll_to: str | None = None) -> None:
    """The page at a device size, as a PNG: the whole page, or one screen (scrolled to ``scroll_to``)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.execute_script("window.scrollTo(0, 0); window.dispatchEvent(new Event('resize'))")
    if whole_page:
        content = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        # a viewport as tall as the page, so the sticky header sits at the top of the picture
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": int(content["height"])})
        driver.execute_script("window.dispatchEvent(new Event('resize'))")
    elif scroll_to:
        driver.execute_script("const el = document.querySelector(arguments[0]);"
                              "window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 64)", scroll_to)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))


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
    await asyncio.to_thread(wait, driver, lambda d: "Unavailable: timeout" in card_text(d, "bay-3"),
                            "bay-3 unavailable with its reason")
    events = await asyncio.to_thread(lambda: driver.find_element(By.ID, "events").text)
    assert "follower bay-1 added" in events and "web installer@127.0.0.1" in events

    await asyncio.sleep(3)  # a few more points on the chart
    keep = os.environ.get("POWERSHARE_SCREENSHOTS")
    out = Path(keep) if keep else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    shots = {"web-desktop.png": (1280, 900, False, True, None), "web-phone.png": (390, 844, True, False, None),
             "web-phone-commissioning.png": (390, 844, True, False, "#commission")}
    for name, (width, height, mobile, whole, scroll_to) in shots.items():
        await asyncio.to_thread(screenshot, driver, out / name, width, height, mobile=mobile, whole_page=whole,
                                scroll_to=scroll_to)
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
