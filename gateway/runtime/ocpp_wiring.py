"""From the site file to OCPP followers: the endpoint they connect to, their stations, and one driver per connector.

The endpoint (``drivers.ocpp.endpoint``) is owned here and started and stopped with the gateway. When the supervisor
asks for a driver, and at every connection attempt, the endpoint's admitted stations are brought in line with the
configuration in force (password files are read again then), so a follower added or removed at run time is admitted
or refused without a restart (the endpoint must be running for that: configure ``ocpp_endpoint`` if OCPP chargers
may be added to a site that has none yet).

Secrets stay out of the site file: each charger names a ``password_file``. A file that cannot be read when the
gateway needs it is logged and the charge point gets a random password nobody knows, so it is refused rather than
admitted without authentication. Transaction ids are issued locally from a persisted counter that reserves ids in
blocks, so ids stay unique across restarts at one fsync per block rather than per transaction.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from drivers.model import ChargerCapabilities
from drivers.ocpp.endpoint import EndpointSettings, OcppEndpoint
from drivers.ocpp.follower import OcppCharger
from drivers.ocpp.station import CountingIds, StationSettings, TransactionIds
from gateway.runtime.supervisor import ChargerHandle, UnitRatings
from gateway.site.config import ChargerConfig, OcppEndpointConfig, OcppTransport, SiteConfig
from gateway.site.settings import SiteSettings
from gateway.site.store import JsonStore
from gateway.site.validation import read_password

log = logging.getLogger(__name__)

RESOLUTION_A = 1.0
"""Setpoints go out in whole amperes: many chargers apply only whole amperes, and rounding down keeps sums safe."""
ID_BLOCK = 100


class PersistentIds:
    """Transaction ids that never repeat, even across restarts: blocks of ``ID_BLOCK`` are reserved on disk."""

    def __init__(self, store: JsonStore) -> None:
        self._store = store
        document = store.load() or {}
        start = document.get("next_block", 1)
        self._next = start if isinstance(start, int) and start > 0 else 1
        self._reserved_to = self._next

    def next_id(self) -> int:
        if self._next >= self._reserved_to:
            self._reserved_to = self._next + ID_BLOCK
            self._store.save({"next_block": self._reserved_to})
        issued = self._next
        self._next += 1
        return issued


def endpoint_config(site: SiteConfig) -> OcppEndpointConfig:
    return site.ocpp_endpoint if site.ocpp_endpoint is not None else OcppEndpointConfig()


def endpoint_settings(config: OcppEndpointConfig, base_dir: Path) -> EndpointSettings:
    return EndpointSettings(
        host=config.host, port=config.port, heartbeat_interval_s=config.heartbeat_interval_s,
        tls_cert_file=base_dir / config.tls_cert_file if config.tls_cert_file else None,
        tls_key_file=base_dir / config.tls_key_file if config.tls_key_file else None,
        id_tags=frozenset(config.id_tags) if config.id_tags is not None else None)


def station_settings(site: SiteConfig, base_dir: Path, unreadable: set[str] | None = None) -> list[StationSettings]:
    """One ``StationSettings`` per charge point, with every connector the site file leads. ``unreadable`` holds the
    charge points whose password file could not be read last time, so that is logged once, not at every attempt."""
    unreadable = set() if unreadable is None else unreadable
    transports: dict[str, list[OcppTransport]] = {}
    for charger in site.chargers:
        if isinstance(charger.transport, OcppTransport):
            transports.setdefault(charger.transport.charge_point_id, []).append(charger.transport)
    out = []
    for cp_id, connectors in transports.items():
        first = connectors[0]
        try:
            password = read_password(base_dir / first.password_file)
        except (OSError, ValueError) as exc:
            if cp_id not in unreadable:
                log.error("%s: cannot read its password file (%s): it cannot connect until this is fixed", cp_id,
                          exc)
                unreadable.add(cp_id)
            password = secrets.token_hex(32)
        else:
            if cp_id in unreadable:
                log.info("%s: its password file can be read again", cp_id)
                unreadable.discard(cp_id)
        out.append(StationSettings(
            charge_point_id=cp_id, password=password, connectors=tuple(sorted(t.connector_id for t in connectors)),
            meter_interval_s=first.meter_interval_s, stack_level=first.stack_level,
            failsafe_current_key=first.failsafe_current_key, failsafe_timeout_key=first.failsafe_timeout_key,
            timeout_s=first.timeout_s))
    return out


class OcppWiring:
    """Builds OCPP follower drivers and owns the endpoint they connect to."""

    def __init__(self, settings: SiteSettings, base_dir: Path, *, ids: TransactionIds | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        """``base_dir``: where relative paths in the site file start (the site file's directory)."""
        self.settings = settings
        self.base_dir = base_dir
        self._unreadable: set[str] = set()
        config = settings.config
        self.endpoint = OcppEndpoint(endpoint_settings(endpoint_config(config), base_dir), self._stations(),
                                     ids=ids if ids is not None else CountingIds(), clock=clock, wall=wall,
                                     refresh=self._stations)

    def _stations(self) -> list[StationSettings]:
        return station_settings(self.settings.config, self.base_dir, self._unreadable)

    @property
    def wanted(self) -> bool:
        """Whether the site needs the endpoint at all."""
        config = self.settings.config
        return config.ocpp_endpoint is not None or any(isinstance(c.transport, OcppTransport)
                                                       for c in config.chargers)

    async def start(self) -> None:
        if self.wanted:
            await self.endpoint.start()

    async def stop(self) -> None:
        await self.endpoint.stop()

    def make_driver(self, charger: ChargerConfig) -> ChargerHandle:
        transport = _ocpp(charger)
        self.endpoint.configure(self._stations())
        station = self.endpoint.stations[transport.charge_point_id]
        caps = ChargerCapabilities(max_current_a=transport.max_current_a, resolution_a=RESOLUTION_A,
                                   phases=charger.phases, has_failsafe=transport.failsafe_current_key is not None)
        return ChargerHandle(OcppCharger(station, transport.connector_id, caps), f"ocpp:{transport.charge_point_id}")

    def ratings(self, charger: ChargerConfig) -> UnitRatings:
        transport = _ocpp(charger)
        return UnitRatings(nameplate_a=transport.max_current_a, limit_a=self.settings.unit_max_a(charger),
                           min_current_a=6.0, resolution_a=RESOLUTION_A,
                           has_failsafe=transport.failsafe_current_key is not None)


def _ocpp(charger: ChargerConfig) -> OcppTransport:
    if not isinstance(charger.transport, OcppTransport):
        raise ValueError(f"{charger.id} is not an OCPP charger")
    return charger.transport
