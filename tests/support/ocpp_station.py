"""A ``Station`` (the OCPP client's synchronous state) fed with read-model snapshots, for tests that drive time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.core.limits import LimitSource
from gateway.faces.ocpp.station import Station
from gateway.runtime.read_model import SiteStatus
from gateway.site.config import SiteConfig, parse_site
from support.ocpp_rig import REGISTRY, site_data
from support.ocpp_units import unit

T0 = 1_700_000_000.0


def config(n: int = 1, limit: float = 32) -> SiteConfig:
    data = site_data(1502, n, {"url": "ws://127.0.0.1:1/x", "authorization": {"mode": "free_vend"}}, limit=limit)
    return parse_site(data, "site.yaml", REGISTRY.nameplate_a)[0]


def station(state: Path, site: SiteConfig, now: float = T0) -> Station:
    assert site.ocpp is not None
    return Station(site, site.ocpp, state, REGISTRY.nameplate_a, lambda: now)


def snapshot(t: float, *units: Any) -> SiteStatus:
    return SiteStatus(time_s=t, enabled=True, installation_limit_a=100, network_limit_a=48,
                      effective_limit_a=(48, 48, 48), limit_source=next(iter(LimitSource)), measured_a=(0, 0, 0),
                      allocated_a=(0, 0, 0), power_w=0, units=tuple(units), health=None)  # type: ignore[arg-type]


def charging(n: int = 1, **changes: Any) -> Any:
    return unit("C", id=f"cp{n}", index=n - 1, current_a=(16.0, 16.0, 16.0), power_w=11000.0,
                **changes)
