"""A figure, not a timed assertion: what one BMS write of the network limit (HR0) costs inside the Modbus request.

``BmsFace.write`` is exactly what the pymodbus action runs for a write; it is timed over the real supervisor with a
state directory, for a write that changes the limit each time. Against it, in the same run, the path a BMS limit
took before it had a source of its own: ``SiteSettings.apply(SetNetworkLimit)``, which revalidates the whole site
(coalesced: no save; and saved at once, as the installer's page still does: two fsyncs). The whole-site checks and
fsyncs per write are counted by spies that still run them.

    POWERSHARE_BENCH=1 pytest tests/bench/test_bms_limit_write_bench.py -s
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import gateway.site.settings as settings_module
from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from gateway.faces.bms.face import BmsFace
from gateway.runtime.app import BMS_LIMIT_FILE, SETTINGS_FILE
from gateway.runtime.commands import SetNetworkLimit
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import SiteConfig
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
WRITES = 200
SAVED_WRITES = 20
"""Fewer for the path that fsyncs twice per write: each costs the disk's latency."""


def site(chargers: int) -> SiteConfig:
    return SiteConfig.model_validate({
        "installation_limit_a": 10_000, "network_limit_a": 60, "enabled": True,
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": 1502 + i // 200, "unit": 1 + i % 200}}
                     for i in range(chargers)]})


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    counts = {"check_site": 0, "fsync": 0}
    real_check, real_fsync = settings_module.check_site, os.fsync

    def check(*args: Any, **kwargs: Any) -> Any:
        counts["check_site"] += 1
        return real_check(*args, **kwargs)

    def fsync(fd: int) -> None:
        counts["fsync"] += 1
        real_fsync(fd)

    with monkeypatch.context() as patch:
        patch.setattr(settings_module, "check_site", check)
        patch.setattr(os, "fsync", fsync)
        yield counts


def timed(calls: int, call: Callable[[int], object]) -> float:
    """Median µs of ``call(k)``, k = 0 … calls - 1."""
    samples = []
    for k in range(calls):
        start = time.perf_counter()
        call(k)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


Row = tuple[int, float, dict[str, int], float, dict[str, int], float, dict[str, int]]


async def measure(chargers: int, state: Path, monkeypatch: pytest.MonkeyPatch) -> Row:
    settings = SiteSettings(site(chargers), REGISTRY.nameplate_a, JsonStore(state / SETTINGS_FILE))
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings,
                            bms_store=JsonStore(state / BMS_LIMIT_FILE))
    face = BmsFace(supervisor)

    def bms_write(k: int) -> None:
        assert face.write(0, [300 + k % 100], "bms 127.0.0.1:50000") is None

    def whole_site(k: int, deferred: bool = True) -> None:
        settings.apply(SetNetworkLimit(30 + k % 100 / 10), deferred=deferred)

    try:
        with counted(monkeypatch) as new:
            new_us = timed(WRITES, bms_write)
        with counted(monkeypatch) as old:
            old_us = timed(WRITES, whole_site)
        with counted(monkeypatch) as saved:
            saved_us = timed(SAVED_WRITES, lambda k: whole_site(k, deferred=False))
    finally:
        await pool.close()
    assert new["check_site"] == 0 and new["fsync"] == 0
    return chargers, new_us, new, old_us, old, saved_us, saved


def per(counts: dict[str, int], writes: int) -> str:
    return f"{counts['check_site'] / writes:g}/{counts['fsync'] / writes:g}"


async def test_a_bms_limit_write_in_the_handler_against_the_whole_site_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [await measure(n, tmp_path / str(n), monkeypatch) for n in (6, 250, 1000)]
    with capsys.disabled():
        print(f"\nOne BMS write of HR0 inside the Modbus request, median µs ({WRITES} writes; the saved path "
              f"{SAVED_WRITES}); per write: whole-site checks/fsyncs")
        print(f"{'chargers':>8}  {'BMS source':>14}  {'whole site, coalesced':>24}  {'ratio':>7}  "
              f"{'whole site, saved at once':>28}  {'ratio':>7}")
        for chargers, new_us, new, old_us, old, saved_us, saved in rows:
            print(f"{chargers:>8}  {new_us:8.1f} {per(new, WRITES):>5}  {old_us:16.1f} {per(old, WRITES):>7}  "
                  f"x{old_us / new_us:6.1f}  {saved_us:20.1f} {per(saved, SAVED_WRITES):>7}  x{saved_us / new_us:6.1f}")
