"""One OCPP charge point as the gateway knows it, across connections: what it reported, and a way to call it.

A ``Station`` outlives its websocket: the charger may reconnect (its network dropped, it rebooted, the gateway
restarted) and its state carries over, except what a gap makes untrustworthy: a reading is only used while fresh,
and meter values the charger kept while offline and sends in a burst on reconnecting (§3.7) are history, not
measurements of now. The messages a charger sends arrive here as plain method calls from the protocol handlers
(``drivers.ocpp.link``); none of them waits for anything, because the receive loop must keep running.

Staleness is what makes a slow follower safe to lead: while a connector serves a car (a transaction, or an active
status), a reading without a ``Current.Import`` sample younger than ``stale_after_s`` raises ``DeviceTimeout``, so
the controller books the charger at what it may still draw instead of trusting an old current.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed

from drivers.aio import cancel_and_wait
from drivers.errors import ConnectionLost, DeviceTimeout, RequestRefused
from drivers.model import ChargerIdentity, ChargerReading, PhaseValues
from drivers.ocpp.meter_values import Sample, parse_meter_values
from drivers.ocpp.status import ACTIVE_STATUSES, error_number, iec_state

log = logging.getLogger(__name__)

LIVE_WINDOW_S = 30.0
"""A sample stamped more than this (or three sample intervals) before now was kept while offline: history."""


class TransactionIds(Protocol):
    """Where locally issued transaction ids come from; they must stay unique across restarts."""

    def next_id(self) -> int: ...


class CountingIds:
    """Ids counting up from ``start``; enough for tests and the simulator (the gateway persists its counter)."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def next_id(self) -> int:
        issued = self._next
        self._next += 1
        return issued


@dataclass(frozen=True, slots=True)
class StationSettings:
    """How the gateway admits and configures one charge point."""

    charge_point_id: str
    password: str | None
    """The AuthorizationKey of HTTP Basic authentication (security profiles 1 and 2); None admits without it."""
    connectors: tuple[int, ...] = (1,)
    """The connectors the gateway leads; a transaction on any other connector is refused (its load is not booked)."""
    meter_interval_s: int = 1
    """MeterValueSampleInterval the gateway sets: how often the charger reports its currents."""
    stack_level: int | None = None
    """Stack level of the gateway's profiles; None: the charger's ChargeProfileMaxStackLevel (read at connect)."""
    failsafe_current_key: str | None = None
    """The charger's own configuration key for the current it falls back to without the gateway (vendor-specific)."""
    failsafe_timeout_key: str | None = None
    """The charger's key for how long it waits without the gateway before falling back (vendor-specific)."""
    timeout_s: float = 3.0
    """How long the charger may take to answer a call (a control step may wait that long for a setpoint)."""

    @property
    def stale_after_s(self) -> float:
        """How old the newest current sample may be while a car is served: two intervals and a margin."""
        return 2.0 * self.meter_interval_s + 3.0


@dataclass
class ConnectorState:
    """What one connector last reported."""

    status: str | None = None
    error_code: str = "NoError"
    active_since: float = -math.inf
    """Monotonic time the connector started serving a car (status or transaction)."""
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_start_wh: float | None = None
    sample: Sample | None = None
    sample_at: float = -math.inf
    """Monotonic time the newest live sample with a current arrived."""
    asked_at: float = -math.inf
    """Monotonic time the gateway last asked for a sample (TriggerMessage MeterValues)."""
    energy_wh: float | None = None
    offered_a: float | None = None

    @property
    def serving(self) -> bool:
        return self.transaction_id is not None or self.status in ACTIVE_STATUSES


@dataclass
class Provisioning:
    """What configuring the charger on this connection found (for the log and the reasons a unit is unavailable)."""

    done: bool = False
    problems: list[str] = field(default_factory=list)


class Link(Protocol):
    """The live connection the station calls through (``drivers.ocpp.link.ChargePointLink``)."""

    closed: asyncio.Event

    async def call(self, payload: Any, suppress: bool = True, unique_id: Any = None,
                   skip_schema_validation: bool = False) -> Any: ...


class Station:
    """One charge point: settings, the live link (if any), and each connector's state."""

    def __init__(self, settings: StationSettings, *, ids: TransactionIds, authorize: Callable[[str], str],
                 clock: Callable[[], float], wall: Callable[[], float]) -> None:
        """``authorize`` maps an idTag to an AuthorizationStatus ("Accepted", "Invalid", ...)."""
        self.settings = settings
        self._ids = ids
        self._authorize = authorize
        self._clock = clock
        self._wall = wall
        self.connectors: dict[int, ConnectorState] = {c: ConnectorState() for c in settings.connectors}
        self.link: Link | None = None
        self.connected_at = -math.inf
        self.provisioning = Provisioning()
        self.stack_level: int | None = settings.stack_level
        self.identity = ChargerIdentity()
        self.boots = 0
        self.booted = asyncio.Event()
        """Set when a BootNotification arrives on the current connection (provisioning waits for it briefly)."""
        self.heard = asyncio.Event()
        """Set when anything arrives on the current connection."""
        self.malformed = 0
        """Frames from this charger that could not be read at all (not even a message id to answer)."""
        self.refused = 0
        """Calls from this charger the gateway answered with a CALLERROR of its own."""
        self.throttled = 0
        """Messages from this charger that had to wait for its connection's rate limit."""

    # -- the connection ------------------------------------------------------------------------------------------
    def attach(self, link: Link) -> Link | None:
        """Make ``link`` the live connection; returns the one it replaces (the caller closes it)."""
        previous = self.link
        self.link = link
        self.connected_at = self._clock()
        self.provisioning = Provisioning()
        self.booted = asyncio.Event()
        self.heard = asyncio.Event()
        for connector in self.connectors.values():
            connector.sample = None  # a reading from before the gap says nothing about now
        return previous

    async def call(self, request: Any) -> Any:
        """Call the charger on its live connection (``call_link``); ``ConnectionLost`` if it has none."""
        if self.link is None:
            raise ConnectionLost(f"{self.settings.charge_point_id} is not connected")
        return await call_link(self.link, request, self.settings.timeout_s, self.settings.charge_point_id)

    def detach(self, link: Link) -> None:
        if self.link is link:
            self.link = None
            self.provisioning = Provisioning()

    # -- what the charger sends (no awaiting here) ------------------------------------------------------------
    def heard_from(self) -> None:
        self.heard.set()

    def boot(self, fields: Mapping[str, Any]) -> None:
        self.boots += 1
        self.identity = ChargerIdentity(serial=fields.get("charge_point_serial_number") or fields.get(
            "charge_box_serial_number"), firmware=fields.get("firmware_version"),
            model=f"{fields.get('charge_point_vendor', '')} {fields.get('charge_point_model', '')}".strip())
        self.booted.set()

    def authorize(self, id_tag: str) -> str:
        return self._authorize(id_tag)

    def status(self, connector_id: int, status: str, error_code: str) -> None:
        connector = self.connectors.get(connector_id)
        if connector is None:
            return  # connector 0 (the charge point as a whole) or one the gateway does not lead
        was_serving = connector.serving
        connector.status = status
        connector.error_code = error_code
        self._serving_changed(connector, was_serving)

    def start_transaction(self, connector_id: int, id_tag: str, meter_start_wh: float) -> tuple[int, str]:
        """Issue a transaction id; the status is "Invalid" on a connector the gateway does not lead."""
        transaction_id = self._ids.next_id()
        connector = self.connectors.get(connector_id)
        if connector is None:
            log.warning("%s: transaction refused on connector %d, which is not in the site file",
                        self.settings.charge_point_id, connector_id)
            return transaction_id, "Invalid"
        status = self._authorize(id_tag)
        was_serving = connector.serving
        connector.transaction_id = transaction_id
        connector.id_tag = id_tag
        connector.meter_start_wh = meter_start_wh
        connector.energy_wh = meter_start_wh
        self._serving_changed(connector, was_serving)
        return transaction_id, status

    def stop_transaction(self, transaction_id: int, meter_stop_wh: float) -> None:
        for connector in self.connectors.values():
            if connector.transaction_id == transaction_id:
                was_serving = connector.serving
                connector.transaction_id = None
                connector.energy_wh = meter_stop_wh
                self._serving_changed(connector, was_serving)

    def _serving_changed(self, connector: ConnectorState, was_serving: bool) -> None:
        """A connector that starts serving gets a grace period for its first sample; one that stops delivers no
        energy (no transaction, no car being served), so its last sample no longer describes it."""
        if connector.serving and not was_serving:
            connector.active_since = self._clock()
        elif was_serving and not connector.serving:
            connector.sample = None

    def meter_values(self, connector_id: int, meter_value: list[Any]) -> None:
        """Raises ``MeterValuesError`` for a message the handler must answer with a CALLERROR."""
        sample = parse_meter_values(meter_value)
        connector = self.connectors.get(connector_id)
        if connector is None:
            return
        now_wall = self._wall()
        window = max(LIVE_WINDOW_S, 3.0 * self.settings.meter_interval_s)
        if sample.energy_wh is not None:
            connector.energy_wh = sample.energy_wh
        if sample.timestamp < now_wall - window:
            return  # kept while offline: history, not a measurement of now
        # A sample stamped in the future counts as taken now: kept as it came, its stamp would make every later
        # sample look older and be ignored until the charger reconnected.
        sample = replace(sample, timestamp=min(sample.timestamp, now_wall))
        if connector.sample is not None and sample.timestamp < connector.sample.timestamp:
            return
        if sample.offered_a is not None:
            connector.offered_a = sample.offered_a
        if sample.has_current:
            connector.sample = sample
            connector.sample_at = self._clock()

    def sample_overdue(self, connector_id: int) -> bool:
        """A car is served, the newest sample is older than two intervals, and the gateway has not asked for one
        within the last two intervals: a charger that kept its old MeterValues schedule after the gateway set
        MeterValueSampleInterval is asked again (TriggerMessage) instead of going stale until its own time comes.
        True also records that the gateway asks now."""
        connector = self.connectors[connector_id]
        if self.link is None or not self.provisioning.done or not connector.serving:
            return False
        now = self._clock()
        late_after = 2.0 * self.settings.meter_interval_s
        since = max(connector.sample_at, self.connected_at, connector.active_since)
        if now - since <= late_after or now - connector.asked_at <= late_after:
            return False
        connector.asked_at = now
        return True

    # -- what the gateway reads ---------------------------------------------------------------------------------
    def reading(self, connector_id: int, phases: int) -> ChargerReading:
        """The connector now, or the driver error that says why it cannot be trusted."""
        name = self.settings.charge_point_id
        if self.link is None:
            raise ConnectionLost(f"{name} is not connected")
        if not self.provisioning.done:
            raise ConnectionLost(f"{name} connected, not configured yet")
        connector = self.connectors[connector_id]
        if connector.status is None:
            raise DeviceTimeout(f"{name} connector {connector_id}: no StatusNotification yet")
        now = self._clock()
        stale_after = self.settings.stale_after_s
        fresh = connector.sample if now - connector.sample_at <= stale_after else None
        if connector.serving:
            since = max(connector.sample_at, self.connected_at, connector.active_since)
            if now - since > stale_after:
                problems = "; ".join(self.provisioning.problems)
                raise DeviceTimeout(f"{name} connector {connector_id}: no Current.Import in meter values for "
                                    f"{now - since:.0f} s" + (f" ({problems})" if problems else ""))
        try:
            state = iec_state(connector.status, connector.transaction_id is not None)
        except KeyError:
            return ChargerReading(invalid=("status",))
        if fresh is not None:
            currents = _currents(fresh, phases)
            power = fresh.power_w
        elif connector.serving:
            currents, power = (None, None, None), None  # the first sample is on its way
        else:
            currents, power = (0.0, 0.0, 0.0), 0.0
        session = None
        if connector.transaction_id is not None and connector.meter_start_wh is not None and \
                connector.energy_wh is not None:
            session = max(0.0, connector.energy_wh - connector.meter_start_wh)
        return ChargerReading(
            state=state, current_a=currents, voltage_v=fresh.voltage_v if fresh else (None, None, None),
            power_w=power, energy_wh=connector.energy_wh, session_energy_wh=session,
            error_code=error_number(connector.error_code), invalid=fresh.invalid if fresh else (),
            id_tag=connector.id_tag if connector.transaction_id is not None else None)


def _currents(sample: Sample, phases: int) -> PhaseValues:
    if any(v is not None for v in sample.current_a):
        return sample.current_a
    value = sample.current_unphased_a
    return (value, value if phases >= 2 else 0.0, value if phases == 3 else 0.0)


async def call_link(link: Link, request: Any, timeout_s: float, name: str) -> Any:
    """Send one call and return the charger's answer (the library's result object).

    Raises ``DeviceTimeout`` without an answer in ``timeout_s`` (waiting behind another call counts), and
    ``ConnectionLost`` as soon as the connection closes, rather than after the timeout: a control step waits for
    this answer, and a charger that is gone must not hold it up.
    """
    action = type(request).__name__
    answer = asyncio.ensure_future(link.call(request, suppress=False))
    closed = asyncio.ensure_future(link.closed.wait())
    try:
        done, _ = await asyncio.wait({answer, closed}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait((answer, closed))
    if answer not in done or answer.cancelled():
        if closed in done:
            raise ConnectionLost(f"{name}: connection closed during {action}")
        raise DeviceTimeout(f"{name}: no answer to {action} within {timeout_s:g} s")
    exc = answer.exception()
    if isinstance(exc, OCPPError):
        raise RequestRefused(f"{name}: {action} answered with CALLERROR {exc.code}: {exc.description}",
                             str(exc.code)) from None
    if isinstance(exc, TimeoutError):
        raise DeviceTimeout(f"{name}: no answer to {action} within {timeout_s:g} s") from None
    if isinstance(exc, ConnectionClosed):
        raise ConnectionLost(f"{name}: connection closed during {action}") from None
    if exc is not None:
        raise exc
    return answer.result()
