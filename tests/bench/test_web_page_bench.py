"""Figures, not timed assertions: what the installer's page costs at 250 chargers, against 6 in the same run.

A real headless Chromium opens the page of a real gateway polling simulated chargers (real Modbus TCP, the
production tick of 1 s, a car charging at every second unit, five distribution boards). Printed per size:

* page weight: bytes the browser fetched to show the page (HTML, CSS, JS, icon, and the JSON it loads at start)
  and the first status over the stream;
* first meaningful paint: ms from navigation until the first status is drawn (the units and totals on screen),
  and the first contentful paint the browser reports;
* update cost: per status message, the bytes on the stream and the time the page spends parsing it and updating
  the DOM (``performance.now()`` around the handler, read from ``app.perf``), median and 95th percentile, on a
  390 px phone with the CPU slowed 4x (Chromium's emulation) and on a desktop, in the compact list and as cards.

Skipped unless asked for:

    POWERSHARE_BENCH=1 python -m pytest tests/bench/test_web_page_bench.py -q -s
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from support.browser import DESKTOP, PHONE, Driver, needs_browser, open_browser, viewport, wait
from support.web import fleet_rig

pytestmark = needs_browser
SETTLE_S = 12.0
"""Status messages (about one a second) collected per measurement."""

RESOURCES_JS = """
const nav = performance.getEntriesByType('navigation')[0];
const entries = [nav, ...performance.getEntriesByType('resource')].filter((e) => !e.name.includes('/api/stream'));
const paint = performance.getEntriesByName('first-contentful-paint')[0];
const first = performance.getEntriesByName('powershare-first-status')[0];
return {
  bytes: entries.reduce((sum, e) => sum + (e.encodedBodySize || 0), 0),
  transfer: entries.reduce((sum, e) => sum + (e.transferSize || 0), 0),
  files: entries.map((e) => [e.name.replace(location.origin, ''), e.encodedBodySize]),
  fcp_ms: paint ? paint.startTime : null,
  first_status_ms: first ? first.startTime : null,
};
"""


@pytest.fixture(autouse=True)
def _only_when_asked(request: pytest.FixtureRequest) -> None:
    if not (os.environ.get("POWERSHARE_BENCH") or request.config.getoption("benchmark_enable", default=False)):
        pytest.skip("page benchmark: set POWERSHARE_BENCH=1 or pass --benchmark-enable")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(driver: Driver, url: str, size: tuple[int, int], throttle: float, mode: str) -> dict[str, Any]:
    driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": throttle})
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    viewport(driver, *size)
    driver.get(url)
    driver.execute_script("localStorage.setItem('powershare.mode', arguments[0])", mode)
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return app.perf.firstStatusMs !== null"), "the first status drawn")
    load = driver.execute_script(RESOURCES_JS)
    driver.execute_script("app.perf.updates = []")
    time.sleep(SETTLE_S)  # the messages arrive in real time: this only collects them, nothing here is timed
    updates = driver.execute_script("return app.perf.updates")
    shown = driver.execute_script("return document.querySelectorAll('#units .unit').length")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    ms = [u["ms"] for u in updates]
    sizes = [u["bytes"] for u in updates]
    return {"load": load, "updates": len(updates), "ms_median": statistics.median(ms), "ms_p95": percentile(ms, 0.95),
            "bytes_median": statistics.median(sizes), "shown": shown, "height_px": height}


async def run(tmp_path: Path, chargers: int) -> dict[str, dict[str, Any]]:
    results = {}
    async with fleet_rig(tmp_path / f"state{chargers}", chargers) as rig:
        driver = await asyncio.to_thread(open_browser, tmp_path / f"chromium{chargers}")
        try:
            for name, size, throttle, mode in (("phone 4x CPU, list", PHONE, 4.0, "list"),
                                               ("phone 4x CPU, cards", PHONE, 4.0, "cards"),
                                               ("desktop, list", DESKTOP, 1.0, "list")):
                results[name] = await asyncio.to_thread(measure, driver, rig.web.url, size, throttle, mode)
        finally:
            await asyncio.to_thread(driver.quit)
    return results


async def test_the_page_at_250_chargers_against_6(tmp_path: Path) -> None:
    small = await run(tmp_path, 6)
    large = await run(tmp_path, 250)
    print("\n\nthe installer's page: 250 chargers (ratio to 6 in the same run)")
    for name, big in large.items():
        base = small[name]
        load, base_load = big["load"], base["load"]
        print(f"  {name}:")
        print(f"    page weight        {load['bytes'] / 1024:8.1f} KiB fetched at start "
              f"(x{load['bytes'] / base_load['bytes']:.2f}); first status {big['bytes_median'] / 1024:.1f} KiB")
        print(f"    first paint        {load['fcp_ms']:8.0f} ms contentful, {load['first_status_ms']:.0f} ms with the "
              f"units drawn (x{load['first_status_ms'] / base_load['first_status_ms']:.2f})")
        print(f"    per status update  {big['ms_median']:8.2f} ms median, {big['ms_p95']:.2f} ms p95 "
              f"(x{big['ms_median'] / max(base['ms_median'], 1e-3):.1f}); {big['bytes_median'] / 1024:.1f} KiB "
              f"on the stream (x{big['bytes_median'] / base['bytes_median']:.1f}); {big['updates']} updates")
        print(f"    page height        {big['height_px']:8d} px with {big['shown']} units listed")
    print("  files at start (250):", json.dumps(large["desktop, list"]["load"]["files"]))
    assert all(r["updates"] > 0 for r in (*small.values(), *large.values())), "the stream delivered updates"
