"""What a commissioning change costs at 6 and at 250 chargers: the site file's rules run on the whole site each time.

``POWERSHARE_BENCH=1 python -m pytest tests/bench/test_commissioning_bench.py -q -s`` prints, per change, the median
time ``SiteSettings.apply`` takes (laying the overlay over the site file, the schema, ``check_site``, the profile and
file rules, the atomic write with its fsyncs), and the size of ``GET /api/commissioning``'s answer. A network limit
runs only the site's cross-field rules (the BMS's own goes to its limit source, never here). Printed, never
asserted; on a shared machine read them as orders of magnitude.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.profile import ProfileRegistry
from gateway.core.limits import LimitSource
from gateway.faces.web.commissioning_schemas import commissioning_out
from gateway.runtime.commands import (
    Command,
    SetCircuit,
    SetInstallationLimit,
    SetMeter,
    SetNetworkLimit,
    SetUnitWiring,
)
from gateway.runtime.read_model import GatewayHealth, SiteStatus
from gateway.site.config import CircuitConfig, MeterConfig, parse_site
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore
from gateway.site.validation import site_rules

REGISTRY = ProfileRegistry.shipped()
ROUNDS = 30
STATUS = SiteStatus(time_s=0.0, enabled=False, installation_limit_a=400, network_limit_a=100,
                    effective_limit_a=(100, 100, 100), limit_source=LimitSource.NETWORK, measured_a=(0, 0, 0),
                    allocated_a=(0, 0, 0), power_w=0.0, units=(), health=GatewayHealth.OK)
"""The read model's part of the answer (the BMS watchdog); the settings are the rest."""


def site(n: int) -> dict[str, Any]:
    return {"installation_limit_a": 400, "network_limit_a": 100,
            "circuits": [{"id": f"board-{i}", "limit_a": 125} for i in range(1, 6)],
            "chargers": [{"id": f"cp{i:03d}", "profile": "powershare-sim", "circuit": f"board-{i % 5 + 1}",
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": 1502 + i // 50,
                                        "unit": i % 50 + 1}} for i in range(n)]}


CHANGES: list[tuple[str, Callable[[int], Command], bool]] = [
    ("network limit, from the page", lambda i: SetNetworkLimit(50 + i % 10), False),
    ("installation limit", lambda i: SetInstallationLimit(390 + i % 10), False),
    ("circuit limit", lambda i: SetCircuit("board-1", CircuitConfig(id="board-1", limit_a=100 + i % 10)), False),
    ("a unit's wiring", lambda i: SetUnitWiring("cp001", 10 + i % 10, 3, "L1L2L3", "board-2"), False),
    ("site meter", lambda i: SetMeter(MeterConfig.model_validate({
        "profile": "powershare-sim-meter", "transport": {"type": "tcp", "host": "127.0.0.1", "port": 1600},
        "limit_a": 300, "fallback_limit_a": 50 + i % 10})), False),
]


def test_what_a_commissioning_change_costs(tmp_path: Path) -> None:
    rows = []
    for n in (6, 250):
        config, _ = parse_site(site(n), "site.yaml", REGISTRY.nameplate_a)
        state = tmp_path / f"state-{n}"
        settings = SiteSettings(config, REGISTRY.nameplate_a, JsonStore(state / "settings.json"),
                                rules=site_rules(REGISTRY, tmp_path))
        for name, change, deferred in CHANGES:
            times = []
            for i in range(ROUNDS):
                started = time.perf_counter()
                settings.apply(change(i), deferred=deferred)
                times.append(time.perf_counter() - started)
            rows.append((name, n, statistics.median(times) * 1000))
        size = len(commissioning_out(settings, STATUS, "0" * 16, True).model_dump_json())
        rows.append(("GET /api/commissioning, bytes", n, float(size)))
    print()
    for name in dict.fromkeys(r[0] for r in rows):
        small, large = [r[2] for r in rows if r[0] == name]
        unit = "" if "bytes" in name else " ms"
        print(f"{name:42s} 6: {small:8.1f}{unit}   250: {large:8.1f}{unit}   (x{large / small:.1f})")
