"""The installer's page in a real headless Chromium, driven through chromedriver (selenium).

The gateway runs in the test's event loop; the browser is driven from a worker thread (``asyncio.to_thread``), so
the loop keeps serving while the browser waits. Tests skip, saying why, where Debian's chromium and
chromium-driver (or selenium) are not installed.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
WAIT_S = 15.0

Driver = Any  # selenium's WebDriver; selenium is an optional (test) dependency


PHONE = (390, 844)
DESKTOP = (1280, 900)

# The header's connection pill against the brand, and the brand against the buttons: [] when nothing overlaps.
OVERLAP_JS = """
const a = document.querySelector('#conn').getBoundingClientRect();
const out = [];
for (const sel of ['.brand-name', '.site-name', '.brand img']) {
  const el = document.querySelector(sel);
  if (!el || !el.getClientRects().length) continue;
  const b = el.getBoundingClientRect();
  if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push(sel);
}
const brand = document.querySelector('.brand').getBoundingClientRect();
const right = document.querySelector('.bar-right').getBoundingClientRect();
if (brand.right > right.left + 0.5) out.push('.brand runs under .bar-right');
return out;
"""

TOUCH_TARGETS_JS = """
const small = [];
for (const el of document.querySelectorAll('button, input, select, summary, .foot a, a.btn')) {
  const box = el.getBoundingClientRect();
  if (!box.width || !box.height || el.closest('[hidden]') || getComputedStyle(el).visibility === 'hidden') continue;
  if (el.closest('dialog:not([open])')) continue;
  if (box.height < 47.5 || box.width < 47.5)
    small.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} "${(el.textContent || el.name).trim()}" ` +
               `${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
}
return small;
"""
"""Every visible button, field and link smaller than a 48 px touch target, described (the page's rule)."""


def open_browser(profile_dir: Path, accept_language: str = "en-US,en") -> Driver:
    """A fresh browser; its Accept-Language is set (not the machine's locale's), so the page's language is the
    test's choice."""
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1280,1000",
                 f"--lang={accept_language.split(',')[0]}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
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
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'.unit-limit[data-unit="{name}"]'),
         f"{name}'s limit row")


def show(driver: Driver, view: str) -> None:
    """Open a view of the page: "overview", "commission" or "events" (its tab, as an installer would)."""
    driver.find_element(By.ID, f"tab-{view}").click()
    wait(driver, lambda d: d.find_element(By.ID, f"view-{view}").is_displayed(), f"the {view} view")


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


def viewport(driver: Driver, width: int, height: int) -> None:
    """Emulate a device: a phone (390 px, touch, 2x pixels) or a desktop window."""
    mobile = width < 600
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1,
                            "mobile": mobile})
    driver.execute_script("window.dispatchEvent(new Event('resize'))")


def allow_downloads(driver: Driver, directory: Path) -> None:
    """Files the page downloads go to ``directory`` (headless Chromium refuses them otherwise)."""
    directory.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(directory)})


def downloaded(directory: Path, pattern: str) -> Path:
    """The file matching ``pattern`` once its download has finished (no partial ``.crdownload`` left)."""
    for _ in range(int(WAIT_S * 10)):
        found = [p for p in directory.glob(pattern) if not p.name.endswith(".crdownload")]
        if found and not list(directory.glob("*.crdownload")):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no download {pattern} in {directory}: {sorted(p.name for p in directory.iterdir())}")
