"""Test doubles for the BMS face: a small honest gateway, a BMS server on a free loopback port, a serial line.

``FakeGateway`` implements ``GatewayControl`` the way the supervisor promises to: it holds the settings,
applies the site file's range rules to every command (including two the register map does not know: the network
limit may not exceed what the chargers could draw, and a charger's breaker may be below its nameplate) and the
session rule of the web API (``check_session_need``, at the snapshot's time), records
every applied command with its origin, and publishes a new snapshot either at once or only when told to (like a
control loop that has not run yet).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from drivers.model import Iec61851State
from gateway.core.limits import LimitSource
from gateway.faces.bms.server import BmsServer
from gateway.runtime.commands import (
    BmsHeartbeat,
    Command,
    CommandRejected,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetEnabled,
    SetNetworkLimit,
    SetSessionNeed,
    SetUnitLimit,
)
from gateway.runtime.needs import SessionNeed, check_session_need
from gateway.runtime.read_model import Availability, GatewayHealth, LinkQuality, SiteStatus, UnitStatus
from gateway.site.config import BmsConfig
from support.ptybridge import PtyBridge

UNIT_A = UnitStatus(
    id="bay-1", index=0, state=Iec61851State.C, availability=Availability.AVAILABLE, unavailable_reason=None,
    setpoint_a=16.0, current_a=(15.9, 15.8, 15.7), power_w=11_000.0, session_energy_wh=70_000.0,
    energy_wh=None, limit_a=20.0, max_current_a=32.0, waiting=False,
    link=LinkQuality(success_rate=0.954, latency_ms=12.0, last_seen_s=1_700_000_000.0), error_code=0)
UNIT_B = UnitStatus(
    id="bay-2", index=1, state=None, availability=Availability.UNAVAILABLE, unavailable_reason="timeout",
    setpoint_a=0.0, current_a=(0.0, 0.0, 0.0), power_w=-3.0, session_energy_wh=0.0,
    energy_wh=5_000_000.0, limit_a=16.0, max_current_a=16.0, waiting=True,
    link=LinkQuality(success_rate=0.0, latency_ms=None, last_seen_s=None), error_code=70_000)

BASE_STATUS = SiteStatus(
    time_s=1_700_000_000.0, enabled=True, installation_limit_a=40.0, network_limit_a=25.0,
    effective_limit_a=(25.0, 24.5, 26.0), limit_source=LimitSource.OCPP, measured_a=(10.1, 20.2, 30.3),
    allocated_a=(12.0, 13.0, 14.0), power_w=123_456.0, units=(UNIT_A, UNIT_B), health=GatewayHealth.DEGRADED,
    bms_watchdog_s=0.0, bms_fallback_limit_a=6.0, invariant_violations=70_000, booked_excess_a=2.5)


@dataclass
class FakeGateway:
    """``GatewayControl`` over plain settings, with the supervisor's validation rules."""

    snapshot: SiteStatus = BASE_STATUS
    publish_on_apply: bool = True
    breaker_a: dict[str, float] = field(default_factory=lambda: {"bay-2": 13.0})
    """Breaker limits below the nameplate: a rule the supervisor knows from the site file and the map does not."""
    applied: list[tuple[Command, str]] = field(default_factory=list)
    _pending: SiteStatus | None = None

    def status(self) -> SiteStatus:
        return self.snapshot

    def apply(self, command: Command, origin: str) -> None:
        current = self._pending or self.snapshot
        new = self._check(current, command, self.breaker_a)
        self.applied.append((command, origin))
        self._pending = new
        if self.publish_on_apply:
            self.publish()

    def publish(self) -> None:
        """What a control step does: the settings applied so far become the snapshot (always a new object)."""
        self.snapshot = replace(self._pending or self.snapshot, time_s=self.snapshot.time_s + 1)
        self._pending = None

    async def updates(self) -> AsyncIterator[SiteStatus]:
        yield self.snapshot

    @property
    def commands(self) -> list[Command]:
        return [c for c, _ in self.applied]

    @staticmethod
    def _check(s: SiteStatus, command: Command, breaker_a: dict[str, float]) -> SiteStatus:
        match command:
            case SetNetworkLimit(limit_a=limit):
                if not 0 <= limit <= s.installation_limit_a:
                    raise CommandRejected(f"{limit:g} A is above the installation limit", "network_limit_a")
                most = sum(u.max_current_a for u in s.units)
                if limit > most:
                    raise CommandRejected(f"{limit:g} A is above what the chargers could draw ({most:g} A)",
                                          "network_limit_a")
                return replace(s, network_limit_a=limit)
            case SetEnabled(enabled=enabled):
                return replace(s, enabled=enabled)
            case SetBmsWatchdog(timeout_s=timeout):
                if timeout < 0:
                    raise CommandRejected("negative watchdog")
                return replace(s, bms_watchdog_s=timeout)
            case SetBmsFallbackLimit(limit_a=limit):
                if not 0 <= limit <= s.installation_limit_a:
                    raise CommandRejected(f"{limit:g} A is above the installation limit")
                return replace(s, bms_fallback_limit_a=limit)
            case SetUnitLimit(charger_id=cid, limit_a=limit):
                units = list(s.units)
                for i, u in enumerate(units):
                    if u.id == cid:
                        most = min(u.max_current_a, breaker_a.get(cid, u.max_current_a))
                        if not 0 <= limit <= most:
                            raise CommandRejected(f"{limit:g} A is above the unit's limit {most:g} A")
                        units[i] = replace(u, limit_a=limit)
                        return replace(s, units=tuple(units))
                raise CommandRejected(f"no charger {cid!r}")
            case SetSessionNeed(charger_id=cid, departure=departure, energy_kwh=energy):
                # The supervisor's own rule, at the snapshot's wall-clock time.
                problem = check_session_need(SessionNeed(departure, energy), datetime.fromtimestamp(s.time_s, UTC))
                if problem is not None:
                    raise CommandRejected(problem)
                units = list(s.units)
                for i, u in enumerate(units):
                    if u.id == cid:
                        units[i] = replace(u, departure_s=departure.timestamp() if departure else None,
                                           energy_wanted_kwh=energy)
                        return replace(s, units=tuple(units))
                raise CommandRejected(f"no charger {cid!r}")
            case BmsHeartbeat():
                return s
        raise CommandRejected(f"not a BMS command: {command!r}")


def bms_config(**overrides: object) -> BmsConfig:
    values: dict[str, object] = {"host": "127.0.0.1", "port": 0, "allow_write_from": ["127.0.0.1"]}
    values.update(overrides)
    return BmsConfig.model_validate(values)


@contextlib.asynccontextmanager
async def running_server(gateway: FakeGateway, config: BmsConfig) -> AsyncIterator[BmsServer]:
    server = BmsServer(gateway, config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.contextmanager
def pty_line() -> Iterator[tuple[str, str]]:
    """Two serial device paths joined like a null-modem cable (see ``ptybridge``); parity must stay N."""
    bridge = PtyBridge()
    try:
        yield bridge.a, bridge.b
    finally:
        bridge.close()
