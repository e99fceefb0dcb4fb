"""From the site file to live Modbus drivers: which profile, which shared bus, which unit.

Kept apart from the supervisor so that the supervisor never needs to know that chargers speak Modbus (the OCPP
followers of a later issue plug in here the same way).
"""

from __future__ import annotations

from drivers.bus import BusPool
from drivers.modbus_charger import ModbusCharger
from drivers.modbus_meter import ModbusMeter
from drivers.profile import ProfileRegistry
from gateway.config import ChargerConfig, MeterConfig
from gateway.endpoints import endpoint_of
from gateway.settings import SiteSettings
from gateway.supervisor import ChargerHandle, MeterHandle, UnitRatings


class ModbusWiring:
    """Builds one driver per charger on the one bus its line shares (``BusPool`` owns and closes the buses)."""

    def __init__(self, registry: ProfileRegistry, settings: SiteSettings, pool: BusPool) -> None:
        self.registry = registry
        self.settings = settings
        self.pool = pool

    def make_driver(self, charger: ChargerConfig) -> ChargerHandle:
        endpoint = endpoint_of(charger.transport)
        driver = ModbusCharger(self.registry.charger(charger.profile), self.pool.bus_for(endpoint),
                               charger.transport.unit, timeout_s=charger.transport.timeout_s,
                               comm_timeout_s=charger.comm_timeout_s)
        return ChargerHandle(driver, endpoint.key)

    def make_meter(self, meter: MeterConfig) -> MeterHandle:
        endpoint = endpoint_of(meter.transport)
        driver = ModbusMeter(self.registry.meter(meter.profile), self.pool.bus_for(endpoint), meter.transport.unit,
                             timeout_s=meter.transport.timeout_s)
        return MeterHandle(driver, endpoint.key)

    def ratings(self, charger: ChargerConfig) -> UnitRatings:
        caps = self.registry.charger(charger.profile).capabilities()
        return UnitRatings(nameplate_a=caps.max_current_a, limit_a=self.settings.unit_max_a(charger),
                           min_current_a=caps.min_current_a, resolution_a=caps.resolution_a,
                           has_failsafe=caps.has_failsafe)
