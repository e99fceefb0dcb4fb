"""A simulated OCPP 1.6J charge point: the shared vehicle model behind a real websocket client built on ``ocpp``.

What it does, per connector: a car plugged in starts a transaction at once (StartTransaction with the configured
idTag; a refused idTag stops it again, StopTransactionOnInvalidId); the charge point offers the car the limit its
charging profiles give (``drivers.sim.ocpp_profiles``), capped at its nameplate and 0 below 6 A, and the car
follows after its lag; it reports StatusNotification on every change, MeterValues every MeterValueSampleInterval
during a transaction (only the measurands MeterValuesSampledData names), and StopTransaction when the car leaves.

Like a real charger it keeps going without its central system: it reconnects (after ``reconnect_s``), keeps its
profiles, and queues its transaction messages (StartTransaction, StopTransaction, sampled MeterValues) while
offline and sends them in order once it is back (§3.7), so the gateway sees the history burst a real charger sends.
With ``failsafe_keys`` it also has a vendor-style fall-back: configuration keys for a current and a timeout; after
that long without its central system it offers the fail-safe current instead of its profiles.

Physics runs on an injected clock (``ScaledClock`` or a test's); the failsafe expiry is applied at its exact
instant, as in the Modbus simulator. Messages use the wall clock for timestamps. ``start``/``stop`` own the one
task that runs the connection loop; everything the connection needs lives inside it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call
from ocpp.v16 import call_result as result
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.typing import Subprotocol

from drivers.aio import cancel_and_wait
from drivers.model import Iec61851State
from drivers.ocpp.meter_values import CURRENT, ENERGY, OFFERED, POWER, VOLTAGE, format_time
from drivers.ocpp.wire_log import wire_log
from drivers.sim.ocpp_profiles import MAX_STACK_LEVEL, ProfileStore
from drivers.sim.vehicle import MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Vehicle, VehicleSpec

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

FAILSAFE_CURRENT_KEY = "PowershareSimFailsafeCurrent"
"""The simulator's own fail-safe keys (a real charger's are vendor-specific; see docs/ocpp-followers.md)."""
FAILSAFE_TIMEOUT_KEY = "PowershareSimFailsafeTimeout"
SUPPORTED_MEASURANDS = frozenset({CURRENT, OFFERED, ENERGY, POWER, VOLTAGE})
LIFETIME_ENERGY_START_WH = 1_000_000.0
TICK_S = 0.05
RESPONSE_TIMEOUT_S = 5.0
MAX_QUEUED = 2000
_READ_ONLY = {"ChargeProfileMaxStackLevel", "NumberOfConnectors", "ChargingScheduleAllowedChargingRateUnit",
              "SupportedFeatureProfiles"}


def _on(action: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], on(action))


@dataclass
class SimConnector:
    """One connector and the car plugged into it."""

    connector_id: int
    vehicle: Vehicle | None = None
    tx_key: int | None = None
    """Local key of the running transaction (its id from the central system may not be known yet)."""
    tx_started_s: float = 0.0
    deauthorized: bool = False
    finished_wh: float = 0.0
    reported: str | None = None
    next_sample: float = 0.0

    def energy_wh(self) -> float:
        return LIFETIME_ENERGY_START_WH + self.finished_wh + (self.vehicle.energy_wh if self.vehicle else 0.0)


@dataclass(frozen=True, slots=True)
class Queued:
    """A transaction message waiting to be sent; its transactionId is filled in at sending time."""

    action: str
    payload: dict[str, Any]
    tx_key: int


class SimOcppCharger:
    """One simulated charge point with ``connectors`` connectors, connecting to ``url`` + its identity."""

    def __init__(self, charge_point_id: str, url: str, clock: Callable[[], float], *, password: str | None = None,
                 connectors: int = 1, nameplate_a: float = 32.0, phases: int = 3, id_tag: str = "SIM-TAG",
                 ssl_context: ssl.SSLContext | None = None, failsafe_keys: bool = False, reconnect_s: float = 0.5,
                 boot_on_reconnect: bool = False, wall: Callable[[], float] = time.time) -> None:
        self.id = charge_point_id
        self.url = url.rstrip("/") + "/" + charge_point_id
        self.clock = clock
        self.password = password
        self.nameplate_a = nameplate_a
        self.phases = phases
        self.id_tag = id_tag
        self.ssl_context = ssl_context
        self.failsafe_keys = failsafe_keys
        self.reconnect_s = reconnect_s
        self.boot_on_reconnect = boot_on_reconnect
        self.wall = wall
        self.connectors = {n: SimConnector(n) for n in range(1, connectors + 1)}
        self.store = ProfileStore(connectors, phases)
        self.config: dict[str, str] = {"MeterValuesSampledData": ENERGY, "MeterValueSampleInterval": "60",
                                       "HeartbeatInterval": "300"}
        self.failsafe_current_a: float | None = None
        self.failsafe_timeout_s = 30.0
        self.in_failsafe = False
        self.offline_since: float | None = clock()
        self.connected = False
        self.connections = 0
        self.boots = 0
        self.refused: list[str] = []
        """Handshake refusals (HTTP status lines), newest last: for tests of admission."""
        self._queue: deque[Queued] = deque(maxlen=MAX_QUEUED)
        self._tx_ids: dict[int, int] = {}
        self._next_key = 1
        self._triggers: list[tuple[str, int | None]] = []
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sim {self.id}")

    async def stop(self) -> None:
        """Cancel the connection task and wait until it has really ended (``cancel_and_wait`` repeats the
        cancellation: one can be lost inside the ``ocpp`` library's or websockets' ``wait_for``)."""
        task, self._task = self._task, None
        for error in await cancel_and_wait(task):
            raise error
        self.connected = False

    # -- the cars ------------------------------------------------------------------------------------------------
    def plug(self, spec: VehicleSpec, connector_id: int = 1) -> Vehicle:
        now = self._advance()
        self.unplug(connector_id)
        connector = self.connectors[connector_id]
        departure = None if spec.departure_s is None else spec.departure_s + now - spec.arrival_s
        connector.vehicle = Vehicle(dataclasses.replace(spec, arrival_s=now, departure_s=departure))
        self._begin(connector, now)
        return connector.vehicle

    def unplug(self, connector_id: int = 1) -> None:
        connector = self.connectors[connector_id]
        if connector.vehicle is None:
            return
        now = self._advance()
        if connector.tx_key is not None:
            self._end(connector, "EVDisconnected")
        connector.finished_wh += connector.vehicle.energy_wh
        connector.vehicle = None
        self._offer_all(now)

    def phase_currents_a(self, connector_id: int = 1) -> tuple[float, float, float]:
        self._advance()
        return self._currents(self.connectors[connector_id])

    def pilot_a(self, connector_id: int = 1) -> float:
        self._advance()
        return self._pilot(self.connectors[connector_id])

    def status(self, connector_id: int = 1) -> str:
        self._advance()
        return self._status(self.connectors[connector_id])

    # -- physics ---------------------------------------------------------------------------------------------------
    def _advance(self) -> float:
        now = self.clock()
        if (self.offline_since is not None and self.failsafe_current_a is not None and not self.in_failsafe
                and now >= self.offline_since + self.failsafe_timeout_s):
            expired_at = self.offline_since + self.failsafe_timeout_s
            for connector in self.connectors.values():
                if connector.vehicle is not None:
                    connector.vehicle.advance(expired_at)
            self.in_failsafe = True
            self._offer_all(expired_at)
        for connector in self.connectors.values():
            if connector.vehicle is not None:
                connector.vehicle.advance(now)
        return now

    def _pilot(self, connector: SimConnector) -> float:
        if connector.vehicle is None or connector.tx_key is None or connector.deauthorized:
            return 0.0
        if self.in_failsafe and self.failsafe_current_a is not None:
            wanted = self.failsafe_current_a
        else:
            wanted = self.store.limit_a(connector.connector_id, self.wall(), self.clock() - connector.tx_started_s)
        wanted = min(wanted, self.nameplate_a)
        return wanted if wanted >= MIN_CURRENT_A else 0.0

    def _offer_all(self, now: float) -> None:
        for connector in self.connectors.values():
            if connector.vehicle is not None:
                connector.vehicle.offer(self._pilot(connector), now)

    def _currents(self, connector: SimConnector) -> tuple[float, float, float]:
        if connector.vehicle is None:
            return (0.0, 0.0, 0.0)
        l1, l2, l3 = connector.vehicle.phase_currents_a()
        return (l1, l2 if self.phases == 3 else 0.0, l3 if self.phases == 3 else 0.0)

    def _status(self, connector: SimConnector) -> str:
        if connector.vehicle is None:
            return "Available"
        if connector.tx_key is None:
            return "Finishing" if connector.deauthorized else "Preparing"
        if connector.tx_key not in self._tx_ids:
            return "Preparing"  # until StartTransaction is answered, as a real charger reports it
        if connector.vehicle.state(self.clock()) is Iec61851State.C:
            return "Charging"
        return "SuspendedEVSE" if self._pilot(connector) < MIN_CURRENT_A else "SuspendedEV"

    # -- transactions (queued: they must reach the central system in order, even after a gap) --------------------
    def _begin(self, connector: SimConnector, now: float) -> None:
        key = self._next_key
        self._next_key += 1
        connector.tx_key = key
        connector.tx_started_s = now
        connector.deauthorized = False
        connector.next_sample = 0.0
        self._queue.append(Queued("StartTransaction", {
            "connector_id": connector.connector_id, "id_tag": self.id_tag,
            "meter_start": int(connector.energy_wh()), "timestamp": format_time(self.wall())}, key))
        self._offer_all(now)

    def _end(self, connector: SimConnector, reason: str) -> None:
        assert connector.tx_key is not None
        self._queue.append(Queued("StopTransaction", {
            "meter_stop": int(connector.energy_wh()), "timestamp": format_time(self.wall()), "reason": reason},
            connector.tx_key))
        self.store.end_transaction(connector.connector_id)
        connector.tx_key = None

    def _sample(self, connector: SimConnector, context: str) -> dict[str, Any]:
        currents = self._currents(connector)
        values: list[dict[str, Any]] = []
        for measurand in self.config["MeterValuesSampledData"].split(","):
            if measurand == CURRENT:
                values += [{"value": f"{currents[i]:.1f}", "measurand": CURRENT, "phase": f"L{i + 1}", "unit": "A",
                            "context": context} for i in range(self.phases)]
            elif measurand == VOLTAGE:
                values += [{"value": f"{NOMINAL_VOLTAGE_V:.1f}", "measurand": VOLTAGE, "phase": f"L{i + 1}-N",
                            "unit": "V", "context": context} for i in range(self.phases)]
            elif measurand == OFFERED:
                values.append({"value": f"{self._pilot(connector):.1f}", "measurand": OFFERED, "unit": "A",
                               "context": context})
            elif measurand == POWER:
                values.append({"value": f"{sum(currents) * NOMINAL_VOLTAGE_V:.0f}", "measurand": POWER,
                               "unit": "W", "context": context})
            elif measurand == ENERGY:
                values.append({"value": f"{connector.energy_wh():.0f}", "measurand": ENERGY, "unit": "Wh",
                               "context": context})
        return {"connector_id": connector.connector_id,
                "meter_value": [{"timestamp": format_time(self.wall()), "sampled_value": values}]}

    def _tick(self, loop_now: float) -> None:
        """What happens whether or not the central system is there: physics, and sampling during transactions."""
        now = self._advance()
        self._offer_all(now)  # a profile's next period, a car that left
        interval = int(self.config["MeterValueSampleInterval"])
        for connector in self.connectors.values():
            if connector.vehicle is not None and not connector.vehicle.present(now):
                self.unplug(connector.connector_id)  # the car left at its departure time
            if connector.tx_key is not None and interval > 0 and loop_now >= connector.next_sample:
                connector.next_sample = loop_now + interval
                self._queue.append(Queued("MeterValues", self._sample(connector, "Sample.Periodic"),
                                          connector.tx_key))

    # -- the connection ----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            headers = {}
            if self.password is not None:
                token = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            try:
                async with connect(self.url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers,
                                   ssl=self.ssl_context, open_timeout=RESPONSE_TIMEOUT_S,
                                   logger=wire_log("sim.websockets")) as ws:
                    await self._session(ws)
            except InvalidHandshake as exc:
                self.refused.append(str(exc))
                log.info("%s: refused: %s", self.id, exc)
            except (OSError, WebSocketException, TimeoutError, OCPPError) as exc:
                log.debug("%s: connection ended: %r", self.id, exc)
            if self.connected:
                self.connected = False
                self.offline_since = self.clock()
            wake = loop.time() + self.reconnect_s
            while loop.time() < wake:
                self._tick(loop.time())
                await asyncio.sleep(TICK_S)

    async def _session(self, ws: ClientConnection) -> None:
        if ws.subprotocol != "ocpp1.6":
            await ws.close(1002, "ocpp1.6 subprotocol required")
            return
        link = _SimLink(self, ws)
        receiving = asyncio.create_task(link.start(), name=f"sim {self.id} receive")
        driving = asyncio.create_task(self._drive(link), name=f"sim {self.id} drive")
        try:
            await asyncio.wait({receiving, driving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            outcomes = await cancel_and_wait((receiving, driving))
        expected = WebSocketException | TimeoutError | OCPPError  # the connection ended; _run reconnects
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, expected):
                raise outcome

    async def _drive(self, link: _SimLink) -> None:
        self.connections += 1
        if self.connections == 1 or self.boot_on_reconnect:
            answer = await link.call(call.BootNotification(charge_point_vendor="powershare",
                                                           charge_point_model="sim-ocpp",
                                                           charge_point_serial_number=self.id,
                                                           firmware_version="sim-1.0"), suppress=False)
            self.boots += 1
            self.config["HeartbeatInterval"] = str(answer.interval)
            await link.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"),
                            suppress=False)
            for connector in self.connectors.values():
                connector.reported = None
        now = self._advance()
        self.connected = True
        self.offline_since = None
        if self.in_failsafe:
            self.in_failsafe = False
            self._offer_all(now)
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + int(self.config["HeartbeatInterval"])
        while True:
            self._tick(loop.time())
            await self._report(link)
            if loop.time() >= next_heartbeat > 0:
                next_heartbeat = loop.time() + int(self.config["HeartbeatInterval"])
                await link.call(call.Heartbeat(), suppress=False)
            await asyncio.sleep(TICK_S)

    async def _report(self, link: _SimLink) -> None:
        """Status changes, triggered messages, then the queue in order."""
        triggers, self._triggers = self._triggers, []
        for message, connector_id in triggers:
            targets = [self.connectors[connector_id]] if connector_id in self.connectors else \
                list(self.connectors.values())
            for connector in targets:
                if message == "StatusNotification":
                    connector.reported = None
                elif message == "MeterValues":
                    payload = self._sample(connector, "Trigger")
                    if connector.tx_key is not None and connector.tx_key in self._tx_ids:
                        payload["transaction_id"] = self._tx_ids[connector.tx_key]
                    await link.call(call.MeterValues(**payload), suppress=False)
            if message == "Heartbeat":
                await link.call(call.Heartbeat(), suppress=False)
        for connector in self.connectors.values():
            status = self._status(connector)
            if status != connector.reported:
                await link.call(call.StatusNotification(connector_id=connector.connector_id, error_code="NoError",
                                                        status=status, timestamp=format_time(self.wall())),
                                suppress=False)
                connector.reported = status
        while self._queue:
            item = self._queue[0]
            try:
                await self._send_queued(link, item)
            except OCPPError as exc:
                log.warning("%s: %s refused (%s); dropped", self.id, item.action, exc)
            self._queue.popleft()

    async def _send_queued(self, link: _SimLink, item: Queued) -> None:
        if item.action == "StartTransaction":
            answer = await link.call(call.StartTransaction(**item.payload), suppress=False)
            self._tx_ids[item.tx_key] = answer.transaction_id
            if answer.id_tag_info.get("status") != "Accepted":
                for connector in self.connectors.values():
                    if connector.tx_key == item.tx_key:  # StopTransactionOnInvalidId
                        connector.deauthorized = True
                        self._end(connector, "DeAuthorized")
                        self._offer_all(self.clock())
            return
        transaction_id = self._tx_ids.get(item.tx_key, -1)
        if item.action == "StopTransaction":
            await link.call(call.StopTransaction(transaction_id=transaction_id, **item.payload), suppress=False)
            self._tx_ids.pop(item.tx_key, None)
        else:
            await link.call(call.MeterValues(transaction_id=transaction_id, **item.payload), suppress=False)

    # -- what the central system asks (handlers never await a call) ---------------------------------------------
    def set_profile(self, connector_id: int, profile: dict[str, Any]) -> str:
        connector = self.connectors.get(connector_id)
        transaction = None
        if connector is not None and connector.tx_key is not None:
            transaction = self._tx_ids.get(connector.tx_key)
        refusal = self.store.refusal(connector_id, profile, transaction)
        if refusal is not None:
            log.info("%s: SetChargingProfile rejected: %s", self.id, refusal)
            return "Rejected"
        self.store.install(connector_id, profile)
        self._offer_all(self._advance())
        return "Accepted"

    def change_configuration(self, key: str, value: str) -> str:
        if key == "MeterValuesSampledData":
            items = value.split(",") if value else []
            if any(item not in SUPPORTED_MEASURANDS for item in items) or len(set(items)) != len(items):
                return "Rejected"
        elif key in ("MeterValueSampleInterval", "HeartbeatInterval"):
            if not value.isdigit():
                return "Rejected"
        elif self.failsafe_keys and key == FAILSAFE_CURRENT_KEY:
            try:
                current = float(value)
            except ValueError:
                return "Rejected"
            if not 0 <= current <= self.nameplate_a:
                return "Rejected"
            self.failsafe_current_a = current
            return "Accepted"
        elif self.failsafe_keys and key == FAILSAFE_TIMEOUT_KEY:
            if not value.isdigit() or int(value) == 0:
                return "Rejected"
            self.failsafe_timeout_s = float(value)
            return "Accepted"
        elif key in _READ_ONLY:
            return "Rejected"
        else:
            return "NotSupported"
        self.config[key] = value
        if key == "MeterValueSampleInterval":
            for connector in self.connectors.values():
                connector.next_sample = 0.0  # the new interval starts now, not after the old one ran out
        return "Accepted"

    def configuration(self) -> dict[str, str]:
        keys = {**self.config, "ChargeProfileMaxStackLevel": str(MAX_STACK_LEVEL),
                "NumberOfConnectors": str(len(self.connectors)), "ChargingScheduleAllowedChargingRateUnit":
                "Current,Power", "SupportedFeatureProfiles": "Core,SmartCharging,RemoteTrigger"}
        if self.failsafe_keys:
            keys[FAILSAFE_CURRENT_KEY] = f"{self.failsafe_current_a or 0:g}"
            keys[FAILSAFE_TIMEOUT_KEY] = f"{self.failsafe_timeout_s:g}"
        return keys


class _SimLink(ChargePoint):  # type: ignore[misc]  # the library has no type information
    def __init__(self, sim: SimOcppCharger, ws: ClientConnection) -> None:
        super().__init__(sim.id, ws, response_timeout=RESPONSE_TIMEOUT_S, logger=wire_log("sim"))
        self.sim = sim

    @_on("SetChargingProfile")
    def _set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        return result.SetChargingProfile(status=self.sim.set_profile(connector_id, cs_charging_profiles))

    @_on("ClearChargingProfile")
    def _clear_profile(self, **fields: Any) -> Any:
        cleared = self.sim.store.clear(fields)
        self.sim._offer_all(self.sim._advance())
        return result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @_on("ChangeConfiguration")
    def _change(self, key: str, value: str) -> Any:
        return result.ChangeConfiguration(status=self.sim.change_configuration(key, value))

    @_on("GetConfiguration")
    def _get(self, key: list[str] | None = None) -> Any:
        known = self.sim.configuration()
        wanted = key if key else list(known)
        return result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": k in _READ_ONLY, "value": known[k]} for k in wanted
                               if k in known] or None,
            unknown_key=[k for k in wanted if k not in known] or None)

    @_on("TriggerMessage")
    def _trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message not in ("StatusNotification", "MeterValues", "Heartbeat"):
            return result.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in self.sim.connectors and connector_id != 0:
            return result.TriggerMessage(status="Rejected")
        self.sim._triggers.append((requested_message, connector_id))
        return result.TriggerMessage(status="Accepted")

