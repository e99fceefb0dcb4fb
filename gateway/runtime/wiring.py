"""From the site file to live drivers: which profile, which shared bus, which unit; or which OCPP charge point.

Kept apart from the supervisor so that the supervisor never needs to know what a charger speaks. ``ModbusWiring``
builds Modbus drivers, ``gateway.runtime.ocpp_wiring.OcppWiring`` builds OCPP followers, and ``SiteWiring`` hands each
charger of a mixed site to the one that speaks its transport.
"""

from __future__ import annotations

from pathlib import Path

from drivers.bus import BusPool
from drivers.modbus_charger import ModbusCharger
from drivers.modbus_meter import ModbusMeter
from drivers.ocpp.station import TransactionIds
from drivers.profile import ChargerProfile, ProfileRegistry
from gateway.runtime.endpoints import endpoint_of
from gateway.runtime.ocpp_wiring import OcppWiring
from gateway.runtime.supervisor import ChargerHandle, MeterHandle, UnitRatings
from gateway.site.config import ChargerConfig, MeterConfig, ModbusTransport, OcppTransport
from gateway.site.settings import SiteSettings


class ModbusWiring:
    """Builds one driver per charger on the one bus its line shares (``BusPool`` owns and closes the buses)."""

    def __init__(self, registry: ProfileRegistry, settings: SiteSettings, pool: BusPool) -> None:
        self.registry = registry
        self.settings = settings
        self.pool = pool

    def make_driver(self, charger: ChargerConfig) -> ChargerHandle:
        profile, transport = self._modbus(charger)
        endpoint = endpoint_of(transport)
        driver = ModbusCharger(profile, self.pool.bus_for(endpoint), transport.unit, timeout_s=transport.timeout_s,
                               comm_timeout_s=charger.comm_timeout_s)
        return ChargerHandle(driver, endpoint.key)

    def make_meter(self, meter: MeterConfig) -> MeterHandle:
        endpoint = endpoint_of(meter.transport)
        driver = ModbusMeter(self.registry.meter(meter.profile), self.pool.bus_for(endpoint), meter.transport.unit,
                             timeout_s=meter.transport.timeout_s)
        return MeterHandle(driver, endpoint.key)

    def ratings(self, charger: ChargerConfig) -> UnitRatings:
        caps = self._modbus(charger)[0].capabilities()
        return UnitRatings(nameplate_a=caps.max_current_a, limit_a=self.settings.unit_max_a(charger),
                           min_current_a=caps.min_current_a, resolution_a=caps.resolution_a,
                           has_failsafe=caps.has_failsafe)

    def _modbus(self, charger: ChargerConfig) -> tuple[ChargerProfile, ModbusTransport]:
        if isinstance(charger.transport, OcppTransport) or charger.profile is None:
            raise ValueError(f"{charger.id} is not a Modbus charger")
        return self.registry.charger(charger.profile), charger.transport


class SiteWiring:
    """Modbus and OCPP followers of one site; ``start``/``stop`` run the OCPP endpoint (when the site needs it)."""

    def __init__(self, registry: ProfileRegistry, settings: SiteSettings, pool: BusPool, base_dir: Path, *,
                 ids: TransactionIds | None = None) -> None:
        """``base_dir``: the site file's directory (relative paths in it start there). ``ids``: where OCPP
        transaction ids come from (``gateway.runtime.ocpp_wiring.PersistentIds`` in the gateway)."""
        self.modbus = ModbusWiring(registry, settings, pool)
        self.ocpp = OcppWiring(settings, base_dir, ids=ids)

    async def start(self) -> None:
        await self.ocpp.start()

    async def stop(self) -> None:
        await self.ocpp.stop()

    def make_driver(self, charger: ChargerConfig) -> ChargerHandle:
        if isinstance(charger.transport, OcppTransport):
            return self.ocpp.make_driver(charger)
        return self.modbus.make_driver(charger)

    def ratings(self, charger: ChargerConfig) -> UnitRatings:
        if isinstance(charger.transport, OcppTransport):
            return self.ocpp.ratings(charger)
        return self.modbus.ratings(charger)
