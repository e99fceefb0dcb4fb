"""Upgrading keeps the state directory: one written by release 0.1.0 (tests/data/state-0.1.0, made by running
0.1.0's own code on tests/data/site-0.1.0.yaml) is read by this release with nothing lost: runtime settings,
followers added and removed, the installer password, the OCPP followers' transaction ids and the OCPP client's
queued messages."""

from __future__ import annotations

import shutil
from pathlib import Path

from support.paths import REPO

from drivers.profile import ProfileRegistry
from gateway.faces.ocpp.station import Station
from gateway.faces.web.auth import PasswordStore
from gateway.runtime.app import BMS_LIMIT_FILE, SETTINGS_FILE, TRANSACTION_IDS_FILE, GatewayApp
from gateway.runtime.ocpp_wiring import PersistentIds
from gateway.site.config import OcppConfig, load_site
from gateway.site.store import JsonStore

DATA = REPO / "tests" / "data"
REGISTRY = ProfileRegistry.shipped()


async def test_a_state_directory_of_0_1_0_is_read_with_nothing_lost(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(DATA / "state-0.1.0", state)
    site, _ = load_site(DATA / "site-0.1.0.yaml", REGISTRY.nameplate_a)

    app = GatewayApp.build(site, REGISTRY, state_dir=state)
    config = app.settings.config
    assert (config.network_limit_a, config.enabled) == (25.0, True)
    assert [c.id for c in config.chargers] == ["cp1", "cp2", "cp4"]
    assert app.settings.unit_limits_a == {"cp2": 10.0}
    assert (app.supervisor.bms.watchdog_s, app.supervisor.bms.fallback_a) == (30.0, 8.0)
    assert (state / BMS_LIMIT_FILE).exists(), "the BMS watchdog is carried over to its own file at once"
    again = GatewayApp.build(site, REGISTRY, state_dir=state)
    assert (again.supervisor.bms.watchdog_s, again.supervisor.bms.fallback_a) == (30.0, 8.0)

    assert await PasswordStore(state).verify("installer-pass-0.1.0")
    assert PersistentIds(JsonStore(state / TRANSACTION_IDS_FILE)).next_id() == 101  # never an id issued before

    station = Station(site, OcppConfig(url="ws://127.0.0.1:9/ocpp", charge_point_id="fixture"), state / "ocpp",
                      REGISTRY.nameplate_a, lambda: 1_790_000_000.0)
    try:
        assert [m.action for m in station.outbox.pending()] == ["StartTransaction", "MeterValues"]
    finally:
        station.close()
    assert (state / SETTINGS_FILE).exists()
