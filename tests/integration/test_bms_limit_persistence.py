"""Issue 12: the BMS's network limit is a limit source of its own (``gateway.runtime.bms_limit``).

A BMS writing its limit every few seconds must not make the gateway revalidate the whole site or touch the disk
inside its Modbus request: a write is checked by the network limit's own rule, takes effect at once, and is saved
at most once per coalescing interval, off the request. The source owns the BMS watchdog, and what it saved is in
force again after a restart.

Saves are counted through the store (``CountingStore`` is a real ``JsonStore`` that counts its writes); the
whole-site check is counted by a spy around ``check_site`` that still runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from support.bms import bms_config
from support.clock import ManualClock
from support.fake_chargers import FakeCharger
from support.virtual_time import VirtualClock, run_virtual

import gateway.site.settings as settings_module
from drivers.bus import BusPool
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.server import SimServer, TcpListen
from gateway.core.limits import LimitSource
from gateway.faces.bms.server import BmsServer
from gateway.runtime.app import BMS_LIMIT_FILE, GatewayApp
from gateway.runtime.commands import BmsHeartbeat, SetBmsFallbackLimit, SetBmsWatchdog, SetNetworkLimit
from gateway.runtime.supervisor import ChargerHandle, Supervisor, UnitRatings
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import ChargerConfig, SiteConfig
from gateway.site.settings import PERSIST_INTERVAL_S, SiteSettings
from gateway.site.store import JsonStore

REGISTRY = ProfileRegistry.shipped()
UNIT = 1
WRITES = 40


class CountingStore(JsonStore):
    """A real store on disk that counts its saves."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saves: list[dict[str, Any]] = []

    def save(self, document: dict[str, Any]) -> None:
        super().save(document)
        self.saves.append(document)


def site(port: int) -> SiteConfig:
    return SiteConfig.model_validate({
        "installation_limit_a": 40, "network_limit_a": 30, "enabled": True, "control": {"tick_s": 0.1},
        "chargers": [{"id": f"cp{i}", "profile": "powershare-sim", "breaker_limit_a": 16,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i}} for i in (1, 2)]})


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def full_site_checks(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[SiteConfig]]:
    """Every whole-site validation the settings run from now on (still run: the spy only records)."""
    seen: list[SiteConfig] = []
    real = settings_module.check_site

    def spy(config: SiteConfig, *args: Any, **kwargs: Any) -> Any:
        seen.append(config)
        return real(config, *args, **kwargs)

    monkeypatch.setattr(settings_module, "check_site", spy)
    yield seen


async def test_bms_limit_writes_over_modbus_validate_nothing_else_and_save_once_per_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    chargers = {i: SimCharger(REGISTRY.charger("powershare-sim"), time.monotonic, serial=f"SIM-{i}") for i in (1, 2)}
    sim = SimServer(chargers, TcpListen())
    await sim.start()
    settings_store = CountingStore(tmp_path / "settings.json")
    bms_store = CountingStore(tmp_path / BMS_LIMIT_FILE)
    settings = SiteSettings(site(sim.port), REGISTRY.nameplate_a, settings_store)
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings, clock=clock,
                            bms_store=bms_store)
    bms = BmsServer(supervisor, bms_config())
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(sim.stop)
        stack.push_async_callback(pool.close)
        await supervisor.start()
        stack.push_async_callback(supervisor.stop)
        await supervisor.wait_ready(5)
        await bms.start()
        stack.push_async_callback(bms.stop)
        assert bms.tcp_address is not None
        client = AsyncModbusTcpClient(bms.tcp_address[0], port=bms.tcp_address[1], timeout=2, retries=0)
        assert await client.connect()
        stack.callback(client.close)
        checks = await stack.enter_async_context(full_site_checks(monkeypatch))

        async def write_limits(first: int) -> None:
            for k in range(WRITES):  # a BMS rewriting a changing limit: 10.0 A, 10.1 A, ...
                rr = await client.write_register(0, first + k, device_id=UNIT)
                assert not rr.isError(), rr

        def in_force(raw: int) -> bool:
            status = supervisor.status()
            return status.effective_limit_a == (raw / 10,) * 3 and status.limit_source is LimitSource.BMS

        await write_limits(100)
        await until(lambda: in_force(100 + WRITES - 1))  # in force at once, shown as the BMS's
        await asyncio.sleep(0.3)  # several control steps, all within the interval
        assert bms_store.saves == [], "saved within the coalescing interval (or inside the requests)"

        clock.advance(PERSIST_INTERVAL_S)
        await until(lambda: len(bms_store.saves) == 1)
        assert bms_store.saves[0]["limit_a"] == (100 + WRITES - 1) / 10

        await write_limits(200)
        await until(lambda: in_force(200 + WRITES - 1))
        clock.advance(PERSIST_INTERVAL_S / 2)
        await asyncio.sleep(0.3)
        assert len(bms_store.saves) == 1, "a second save within one interval"
        clock.advance(PERSIST_INTERVAL_S / 2)
        await until(lambda: len(bms_store.saves) == 2)
        assert bms_store.saves[1]["limit_a"] == (200 + WRITES - 1) / 10

        assert checks == [], f"{len(checks)} whole-site validations for {2 * WRITES} BMS limit writes"
        assert settings_store.saves == [] and settings.config.network_limit_a == 30  # the installer's, untouched
        rr = await client.write_register(0, 350, device_id=UNIT)  # the site file's rule: above the chargers' 32 A
        assert rr.isError() and rr.exception_code == 3
        assert checks == [] and supervisor.bms.limit_a == (200 + WRITES - 1) / 10


def test_the_watchdog_of_the_bms_source_falls_back_at_its_deadline_in_virtual_time() -> None:
    clock = VirtualClock(1000.0)
    config = SiteConfig.model_validate({
        "installation_limit_a": 63, "network_limit_a": 32, "enabled": True, "control": {"tick_s": 5.0},
        "chargers": [{"id": "cp1", "profile": "powershare-sim",
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": 1000, "unit": 1}}]})
    charger = FakeCharger(clock)

    def ratings(_: ChargerConfig) -> UnitRatings:
        return UnitRatings(nameplate_a=32, limit_a=32, min_current_a=6, resolution_a=1, has_failsafe=True)

    async def main() -> list[tuple[float, LimitSource, float]]:
        supervisor = Supervisor(SiteSettings(config, REGISTRY.nameplate_a), lambda _: ChargerHandle(charger, "bus"),
                                ratings_of=ratings, clock=clock, wall=lambda: 1.7e9 + clock())
        seen: list[tuple[float, LimitSource, float]] = []

        async def watch() -> None:
            async for status in supervisor.updates():
                seen.append((clock.now, status.limit_source, status.effective_limit_a[0]))

        await supervisor.start()
        watcher = asyncio.create_task(watch())
        try:
            await supervisor.wait_ready(30)
            supervisor.apply(SetBmsFallbackLimit(8), "bms 10.0.8.21:5000")
            supervisor.apply(SetBmsWatchdog(12), "bms 10.0.8.21:5000")
            supervisor.apply(SetNetworkLimit(20), "bms 10.0.8.21:5000")  # at t0: the watchdog counts from here
            t0 = clock.now
            await asyncio.sleep(30)  # no word from the BMS: the fallback at t0 + 12 s, not at the next 5 s tick
            supervisor.apply(BmsHeartbeat(), "mqtt broker")  # the MQTT face feeds the same watchdog
            await asyncio.sleep(1)
        finally:
            watcher.cancel()
            await supervisor.stop()
        return [(t - t0, source, limit) for t, source, limit in seen if t >= t0]

    seen = run_virtual(main(), clock)
    fallback = [t for t, source, _ in seen if source is LimitSource.BMS_FALLBACK]
    assert fallback and fallback[0] == pytest.approx(12.0), seen
    assert all(s is LimitSource.BMS and limit == 20 for t, s, limit in seen if t < 12), seen
    assert all(limit == 8 for t, s, limit in seen if 12 <= t < 30), seen
    assert seen[-1][1:] == (LimitSource.BMS, 20), "the heartbeat brings back the BMS's limit"


async def test_the_bms_limit_and_watchdog_survive_a_restart_and_an_installer_change_releases_the_limit(
        tmp_path: Path) -> None:
    sim = SimServer({i: SimCharger(REGISTRY.charger("powershare-sim"), time.monotonic, serial=f"SIM-{i}")
                     for i in (1, 2)}, TcpListen())
    await sim.start()
    state = tmp_path / "state"
    try:
        async with GatewayApp.build(site(sim.port), REGISTRY, state_dir=state) as app:
            await app.supervisor.wait_ready(5)
            app.supervisor.apply(SetBmsWatchdog(60), "bms 10.0.8.21:5000")
            app.supervisor.apply(SetNetworkLimit(12.5), "bms 10.0.8.21:5000")
        async with GatewayApp.build(site(sim.port), REGISTRY, state_dir=state) as app:
            await app.supervisor.wait_ready(5)
            await until(lambda: app.supervisor.status().limit_source is LimitSource.BMS)
            assert app.supervisor.status().network_limit_a == 12.5 and app.supervisor.bms.watchdog_s == 60
            app.supervisor.apply(SetNetworkLimit(25), "web installer@10.0.0.2")  # the last writer wins
            await until(lambda: app.supervisor.status().limit_source is LimitSource.NETWORK)
            assert app.supervisor.status().network_limit_a == 25 and app.supervisor.bms.limit_a is None
        async with GatewayApp.build(site(sim.port), REGISTRY, state_dir=state) as app:
            assert app.supervisor.bms.limit_a is None and app.settings.config.network_limit_a == 25
        edited = site(sim.port).model_copy(update={"network_limit_a": 28.0})
        async with GatewayApp.build(site(sim.port), REGISTRY, state_dir=state) as app:
            app.supervisor.apply(SetNetworkLimit(11), "bms 10.0.8.21:5000")
        async with GatewayApp.build(edited, REGISTRY, state_dir=state) as app:  # the file was edited meanwhile
            assert app.supervisor.bms.limit_a is None and app.supervisor.status().network_limit_a == 28
    finally:
        await sim.stop()
