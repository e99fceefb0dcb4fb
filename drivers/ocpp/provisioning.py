"""What the gateway configures on a follower each time it connects, before it leads it.

1. ``MeterValuesSampledData``: current per phase, offered current, energy, power (a charger that refuses the list
   is asked for just current and energy). Without ``Current.Import`` the gateway cannot see a car come down.
2. ``MeterValueSampleInterval``: a short interval, so a lower current is seen within seconds.
3. ``ChargeProfileMaxStackLevel`` is read when the site file does not fix the stack level: the gateway's profiles
   go at the top of the stack, where no profile left by a previous central system can shadow them.
4. A guard: a ``TxDefaultProfile`` of 0 A on connector 0, one stack level below the gateway's own. A charger that
   has never been led has no profile at all, and no profile means no limit: a car plugged in before the gateway's
   first setpoint would draw the charger's maximum. The guard holds it at 0 A until then; the connector's own
   setpoint profile, one level higher, replaces it on each led connector (a connector the site file does not lead
   stays at 0 A). A charger whose stack has a single level (0) gets no guard.
5. ``TriggerMessage`` for each led connector's StatusNotification and MeterValues: after a reconnect the charger
   need not resend a status that did not change (§4.9), and the gateway needs it now.

A step the charger refuses is recorded (it shows in the reason a unit is unavailable) and the next one is tried:
a charger that will not report currents becomes unavailable for staleness, which books it safely, rather than
never being led at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ocpp.v16 import call

from drivers.errors import DriverError
from drivers.ocpp.meter_values import CURRENT, ENERGY, SAMPLED_MEASURANDS
from drivers.ocpp.profiles import setpoint_profile
from drivers.ocpp.station import Link, Station, call_link

log = logging.getLogger(__name__)

BOOT_WAIT_S = 1.0
"""A charger that has just rebooted sends BootNotification first; configuration waits this long for a first word."""
FALLBACK_STACK_LEVEL = 0


async def provision(station: Station, link: Link) -> None:
    """Configure the charger on ``link``; sets ``station.provisioning.done`` (problems listed, never raised)."""
    name = station.settings.charge_point_id
    timeout_s = station.settings.timeout_s
    state = station.provisioning  # this connection's: a replacing connection starts its own
    problems = state.problems
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(BOOT_WAIT_S):
            await station.heard.wait()

    async def change(key: str, value: str) -> bool:
        try:
            answer = await call_link(link, call.ChangeConfiguration(key=key, value=value), timeout_s, name)
        except DriverError as exc:
            problems.append(f"{key}={value}: {exc}")
            return False
        if answer.status != "Accepted":
            problems.append(f"{key}={value} {answer.status}")
            return False
        return True

    if not await change("MeterValuesSampledData", ",".join(SAMPLED_MEASURANDS)):
        await change("MeterValuesSampledData", f"{CURRENT},{ENERGY}")
    await change("MeterValueSampleInterval", str(station.settings.meter_interval_s))
    if station.settings.stack_level is None:
        level = await _max_stack_level(link, timeout_s, name, problems)
        if station.link is link:
            station.stack_level = level
    if station.stack_level is not None and station.stack_level >= 1:
        guard = call.SetChargingProfile(connector_id=0, cs_charging_profiles=setpoint_profile(
            0, station.stack_level - 1, 0.0))
        try:
            answer = await call_link(link, guard, timeout_s, name)
        except DriverError as exc:
            problems.append(f"guard profile: {exc}")
        else:
            if answer.status != "Accepted":
                problems.append(f"guard profile {answer.status}")
    for connector_id in station.settings.connectors:
        for message in ("StatusNotification", "MeterValues"):
            try:
                await call_link(link, call.TriggerMessage(requested_message=message, connector_id=connector_id),
                                timeout_s, name)
            except DriverError as exc:
                problems.append(f"TriggerMessage {message}: {exc}")
    if problems:
        log.warning("%s: configured with problems: %s", name, "; ".join(problems))
    state.done = True


async def _max_stack_level(link: Link, timeout_s: float, name: str, problems: list[str]) -> int:
    key = "ChargeProfileMaxStackLevel"
    try:
        answer = await call_link(link, call.GetConfiguration(key=[key]), timeout_s, name)
    except DriverError as exc:
        problems.append(f"{key}: {exc}")
        return FALLBACK_STACK_LEVEL
    for item in answer.configuration_key or []:
        if item.get("key") == key:
            try:
                return max(0, int(item.get("value", "")))
            except ValueError:
                break
    problems.append(f"{key} not reported; profiles at stack level {FALLBACK_STACK_LEVEL}")
    return FALLBACK_STACK_LEVEL
