"""The History view in a real headless Chromium, at 6 and 250 chargers, on a desktop and a 390 px phone.

The state directory starts with a week of history made up in virtual time (``support.history.fill``: cars coming
and going, events, current per phase), ending now; the real gateway then runs on it. The view must draw the chart
over 1 h, 24 h and 7 d with the limit line, list and page the sessions, show the event log, download the three CSV
files, keep every touch target at 48 px and fit a phone's width.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.browser import (
    DESKTOP,
    PHONE,
    TOUCH_TARGETS_JS,
    By,
    Driver,
    allow_downloads,
    downloaded,
    needs_browser,
    open_browser,
    screenshot,
    viewport,
    wait,
)
from support.history import Fleet, fill
from support.web import fleet_rig, web_rig

from gateway.runtime.history.service import HISTORY_FILE

pytestmark = needs_browser
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
WEEK = 7.0


def chart_points(driver: Driver) -> int:
    return int(driver.find_element(By.ID, "hist-chart").get_attribute("data-points") or 0)


def tap(driver: Driver, element: Any) -> None:
    """Scroll to it (as a thumb would; the tabs stay on top of the page) and tap it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def open_history(driver: Driver, url: str) -> None:
    driver.get(url + "#/history")
    wait(driver, lambda d: d.find_element(By.ID, "view-history").is_displayed(), "the History view")
    driver.execute_script("const d = document.getElementById('auth-dialog'); if (d.open) d.close();")
    assert driver.find_element(By.ID, "tab-history").get_attribute("aria-current") == "page"


def check_history(driver: Driver, size: tuple[int, int], downloads: Path, units: int, every_s: float) -> None:
    """Chart over each range, sessions paged, events, CSV files, touch targets, width."""
    hour = int(3600 / max(every_s, 10) * 0.9)  # the fill's snapshots: one per 10 s bucket, or fewer
    wait(driver, lambda d: chart_points(d) >= hour, f"the last hour: {hour} points at least")
    for button, at_least in (("24h", 650), ("7d", 600)):
        tap(driver, driver.find_element(By.CSS_SELECTOR, f'[data-range="{button}"]'))
        wait(driver, lambda d, n=at_least: chart_points(d) >= n, f"the chart over {button}")  # type: ignore[misc]
        drawn = driver.execute_script(
            "return [...document.querySelectorAll('#hist-chart polyline')].map((l) => [l.getAttribute('class'), "
            "l.getAttribute('points').split(' ').length])")
        by_class: dict[str, int] = {}
        for name, count in drawn:
            by_class[name] = by_class.get(name, 0) + count
        assert by_class["mean l1"] >= at_least and by_class["peak l1"] >= at_least, by_class
        assert by_class["limit"] >= at_least, f"the limit line is drawn over {button}: {by_class}"
        summary = driver.find_element(By.ID, "hist-summary").text
        assert summary.startswith("Highest: ") and " A on L" in summary, summary

    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#hist-sessions-body tr"), "the sessions")
    note = driver.find_element(By.ID, "hist-sessions-note").text
    total = int(note.rsplit(" of ", 1)[1])
    assert note.startswith("1–") and total >= units, note
    if total > 25:
        tap(driver, driver.find_element(By.ID, "hist-older"))
        wait(driver, lambda d: d.find_element(By.ID, "hist-sessions-note").text.startswith("26–"), "the next page")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hist-events li")) > 10, "the event log")
    assert "by web installer@10.0.0.7" in driver.find_element(By.ID, "hist-events").text

    small = driver.execute_script(TOUCH_TARGETS_JS)
    assert small == [], f"touch targets under 48 px in the History view at {size[0]} px: {small}"
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the History view is {overflow} px wider than the screen at {size[0]} px"

    allow_downloads(driver, downloads)
    for link, pattern, header in (
            ("csv-history", "powershare-history-site-7d*.csv", "time_utc,l1_a,l2_a,l3_a,l1_max_a"),
            ("csv-sessions", "powershare-sessions*.csv", "unit,start_utc,end_utc,energy_kwh,id_tag"),
            ("csv-events", "powershare-events*.csv", "time_utc,kind,text,origin")):
        tap(driver, driver.find_element(By.ID, link))
        file = downloaded(downloads, pattern)
        text = file.read_text(encoding="utf-8")
        assert text.startswith(header), text[:200]
        assert len(list(csv.reader(text.splitlines()))) > 10, f"{file.name} holds the week"
        file.unlink()


async def prefilled(state: Path, fleet: Fleet, every_s: float) -> None:
    """A week of history, ending now, in the state directory the gateway is about to use."""
    await asyncio.to_thread(fill, state / HISTORY_FILE, fleet, WEEK, every_s=every_s, end_s=time.time(),
                            flush_s=3600)


@SIZES
async def test_the_history_view_at_6_chargers(tmp_path: Path, size: tuple[int, int]) -> None:
    state = tmp_path / "state"
    await prefilled(state, Fleet(6, per_circuit=3, circuit_limit_a=32, site_limit_a=32, names="cp{n}"), every_s=10)
    async with web_rig(state, configured=6, units=6) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            await asyncio.to_thread(viewport, driver, *size)
            await asyncio.to_thread(open_history, driver, rig.web.url)
            await asyncio.to_thread(check_history, driver, size, tmp_path / "downloads", 6, 10)
            keep = os.environ.get("POWERSHARE_SCREENSHOTS")
            if keep:
                name = "web-history-desktop.png" if size == DESKTOP else "web-phone-history.png"
                await asyncio.to_thread(screenshot, driver, Path(keep) / name, *size, mobile=size == PHONE,
                                        whole_page=size == DESKTOP)
        finally:
            await asyncio.to_thread(driver.quit)


async def test_the_history_view_at_250_chargers_on_a_phone_and_a_desktop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    await prefilled(state, Fleet(250, per_circuit=50, site_limit_a=400), every_s=60)
    async with fleet_rig(state, 250) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / "chromium")
        try:
            for size in (PHONE, DESKTOP):
                await asyncio.to_thread(viewport, driver, *size)
                await asyncio.to_thread(open_history, driver, rig.web.url)
                await asyncio.to_thread(check_history, driver, size, tmp_path / "downloads", 250, 60)
            choices = await asyncio.to_thread(driver.execute_script,
                                              "return [...document.getElementById('hist-circuit').options]"
                                              ".map((o) => o.value)")
            assert choices == ["", "board-1", "board-2", "board-3", "board-4", "board-5"], choices
        finally:
            await asyncio.to_thread(driver.quit)
