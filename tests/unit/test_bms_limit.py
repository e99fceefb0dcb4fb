"""The BMS's limit source on its own: its rules, when it saves, and what it restores (a real store on disk)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.clock import ManualClock

from gateway.runtime.bms_limit import BmsLimit
from gateway.runtime.commands import CommandRejected
from gateway.site.config import parse_site
from gateway.site.settings import PERSIST_INTERVAL_S, SiteSettings
from gateway.site.store import JsonStore

NAMEPLATES = {"sim": 16.0}
"""Two chargers: 32 A on every phase together."""


def settings(tmp_path: Path, network_limit_a: float = 30, **overlay: object) -> SiteSettings:
    config, _ = parse_site({
        "installation_limit_a": 63, "network_limit_a": network_limit_a,
        "chargers": [{"id": f"cp{i}", "profile": "sim", "transport": {"type": "tcp", "host": "h", "port": 500 + i}}
                     for i in range(2)]}, "site.yaml", NAMEPLATES.__getitem__)
    store = JsonStore(tmp_path / "settings.json")
    if overlay:
        store.save({"version": 1, **overlay})
    return SiteSettings(config, NAMEPLATES.__getitem__, store)


def source(tmp_path: Path, clock: ManualClock, **kwargs: object) -> BmsLimit:
    return BmsLimit(settings(tmp_path, **kwargs), JsonStore(tmp_path / "bms-limit.json"), clock)  # type: ignore[arg-type]


def on_disk(tmp_path: Path) -> dict[str, object]:
    return dict(json.loads((tmp_path / "bms-limit.json").read_text()))


def test_a_limit_is_checked_by_the_network_limit_rule_and_changes_nothing_when_refused(tmp_path: Path) -> None:
    bms = source(tmp_path, ManualClock())
    for bad, words in ((64, "installation limit"), (33, "busiest phase"), (float("inf"), "between 0 A")):
        with pytest.raises(CommandRejected, match=words):
            bms.set_limit(bad, 1000)
    assert bms.limit_a is None and bms.network_a() == 30 and not bms.unsaved
    bms.set_limit(32, 1000)
    assert bms.network_a() == 32
    with pytest.raises(CommandRejected, match="0 \\(off\\) to 65535 s"):
        bms.set_watchdog(-1, 1000)
    with pytest.raises(CommandRejected, match="installation limit"):
        bms.set_fallback(70)
    assert (bms.watchdog_s, bms.fallback_a) == (0, 0)


def test_limits_are_saved_once_per_interval_and_watchdog_changes_at_once(tmp_path: Path) -> None:
    clock = ManualClock(1000)
    bms = source(tmp_path, clock)
    for k in range(20):
        bms.set_limit(10 + k / 10, clock())
    assert not bms.save_due(clock())
    clock.advance(PERSIST_INTERVAL_S)
    assert bms.save_due(clock()) and not bms.save_due(clock())
    bms.set_watchdog(30, clock())
    assert bms.save_due(clock()), "a watchdog change waits for no interval"
    bms.set_limit(20, clock())
    assert not bms.save_due(clock() + PERSIST_INTERVAL_S - 1)
    assert bms.save_due(clock() + PERSIST_INTERVAL_S)


async def test_a_save_on_the_worker_thread_never_overwrites_a_newer_state(tmp_path: Path) -> None:
    bms = source(tmp_path, ManualClock())
    bms.set_limit(10, 1000)
    saving = asyncio.create_task(bms.save())
    await asyncio.sleep(0)  # the save has taken its copy (10 A) and handed it to a thread
    bms.set_limit(11, 1000)
    bms.flush()  # a stop while that write is under way
    await saving
    assert on_disk(tmp_path)["limit_a"] == 11 and not bms.unsaved


def test_what_is_saved_comes_back_and_what_no_longer_fits_does_not(tmp_path: Path) -> None:
    clock = ManualClock()
    bms = source(tmp_path, clock)
    bms.set_limit(25, clock())
    bms.set_watchdog(60, clock())
    bms.set_fallback(8)
    bms.flush()
    again = source(tmp_path, clock)
    assert (again.limit_a, again.watchdog_s, again.fallback_a, again.unsaved) == (25, 60, 8, False)
    edited = source(tmp_path, clock, network_limit_a=28)  # the installer edited the site file's network limit
    assert edited.limit_a is None and edited.network_a() == 28 and edited.watchdog_s == 60
    assert edited.unsaved, "the release is saved, so that an edit back cannot revive the BMS's old limit"
    (tmp_path / "bms-limit.json").write_text(json.dumps({
        "version": 1, "limit_a": 50, "network_limit_file_a": 30, "watchdog_s": 1e9, "fallback_limit_a": 8}))
    broken = source(tmp_path, clock)  # above the chargers' 32 A, and a watchdog out of range
    assert (broken.limit_a, broken.watchdog_s, broken.fallback_a) == (None, 0, 0)


def test_the_watchdog_kept_in_the_settings_by_older_versions_is_carried_over(tmp_path: Path) -> None:
    bms = source(tmp_path, ManualClock(), bms_watchdog_s=30.0, bms_fallback_limit_a=8.0)
    assert (bms.watchdog_s, bms.fallback_a) == (30, 8)
    assert on_disk(tmp_path)["watchdog_s"] == 30, "carried over to its own file at once"
