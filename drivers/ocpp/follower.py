"""The follower driver for one connector of an OCPP charger connected to the gateway's endpoint.

It implements the same ``ChargerDriver`` port as the Modbus driver, so the supervisor leads both alike.

* ``read`` returns what the charger last reported (``Station.reading``): state from StatusNotification, currents
  per phase, power and energy from MeterValues. No OCPP round trip happens here, except a TriggerMessage
  MeterValues when a served connector's sample is overdue (``Station.sample_overdue``): a charger that keeps its
  old schedule after the gateway set MeterValueSampleInterval would otherwise be stale until its own time came.
* ``write_setpoint`` sends one SetChargingProfile: a ``TxDefaultProfile`` on the connector, at the gateway's stack
  level, kind ``Relative`` with a single period from 0 and no duration, so it holds for as long as it is installed,
  whatever the charger's clock says (an Absolute profile whose start the charger's clock has not reached yet would
  leave it unconstrained). A TxDefaultProfile also governs a transaction that is already running (errata §3.8);
  one profile per connector, replaced in place by id, means there is never a second profile of the gateway's whose
  value could disagree with the first. It returns once the charger answered ``Accepted``.
* ``configure_failsafe`` writes the charger's own fail-safe configuration keys where the site file names them; a
  charger without them raises ``UnsupportedOperation`` and is booked at its maximum while unreachable. A profile
  that expires (``validTo``, ``duration``) is no fail-safe: when it ends the charger falls back to *no* limit.
"""

from __future__ import annotations

import contextlib
import math

from ocpp.v16 import call

from drivers.errors import ConnectionLost, DriverError, RequestRefused, UnsupportedOperation
from drivers.model import ChargerCapabilities, ChargerIdentity, ChargerReading
from drivers.ocpp.profiles import limit_of, setpoint_profile
from drivers.ocpp.station import Station
from drivers.plausibility import bounded


class OcppCharger:
    """One connector of one OCPP charge point. Implements ``ChargerDriver`` and ``IdentityReader``."""

    def __init__(self, station: Station, connector_id: int, capabilities: ChargerCapabilities) -> None:
        if connector_id not in station.settings.connectors:
            raise ValueError(f"{station.settings.charge_point_id} has no connector {connector_id} configured")
        self.station = station
        self.connector_id = connector_id
        self._capabilities = capabilities

    @property
    def capabilities(self) -> ChargerCapabilities:
        return self._capabilities

    async def read(self) -> ChargerReading:
        if self.station.sample_overdue(self.connector_id):
            with contextlib.suppress(DriverError):  # the reading below says what is wrong if no sample comes
                await self.station.call(call.TriggerMessage(requested_message="MeterValues",
                                                            connector_id=self.connector_id))
        reading = self.station.reading(self.connector_id, self._capabilities.phases)
        return bounded(reading, self._capabilities.max_current_a)[0]

    async def write_setpoint(self, current_a: float) -> None:
        station = self.station
        if station.link is None or not station.provisioning.done or station.stack_level is None:
            raise ConnectionLost(f"{station.settings.charge_point_id} is not connected and configured")
        limit = limit_of(current_a)
        request = call.SetChargingProfile(connector_id=self.connector_id, cs_charging_profiles=setpoint_profile(
            self.connector_id, station.stack_level, limit))
        answer = await station.call(request)
        if answer.status != "Accepted":
            raise RequestRefused(f"{station.settings.charge_point_id} connector {self.connector_id}: "
                                 f"SetChargingProfile {limit:g} A {answer.status}", str(answer.status))

    async def keep_alive(self) -> None:
        """Nothing to do: an OCPP charger has no watchdog the gateway feeds (websocket pings keep the link)."""

    async def configure_failsafe(self, current_a: float, timeout_s: float) -> None:
        settings = self.station.settings
        if settings.failsafe_current_key is None:
            raise UnsupportedOperation(f"{settings.charge_point_id}: no fail-safe configuration key in the site file")
        await self._change(settings.failsafe_current_key, f"{limit_of(current_a):g}")
        if settings.failsafe_timeout_key is not None:
            await self._change(settings.failsafe_timeout_key, str(max(1, math.ceil(timeout_s))))

    async def _change(self, key: str, value: str) -> None:
        answer = await self.station.call(call.ChangeConfiguration(key=key, value=value))
        if answer.status != "Accepted":  # RebootRequired too: the value is not in force yet
            raise RequestRefused(f"{self.station.settings.charge_point_id}: ChangeConfiguration {key}={value} "
                                 f"{answer.status}", str(answer.status))

    async def read_identity(self) -> ChargerIdentity:
        if self.station.link is None:
            raise ConnectionLost(f"{self.station.settings.charge_point_id} is not connected")
        return self.station.identity

    async def close(self) -> None:
        """The endpoint, not the driver, owns the connection."""
