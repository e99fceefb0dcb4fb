"""In-process chargers implementing ``drivers.ports.ChargerDriver``, for the supervisor in virtual time.

Each is a device (setpoint, fail-safe current, communication watchdog) with a simulated car behind it
(``drivers.sim.vehicle``) and a link that the test can break in the ways real links break:

* ``DOWN``: nothing answers; every exchange takes the transaction timeout and then raises ``DeviceTimeout``;
* ``LAG``: every exchange succeeds, ``lag_s`` late;
* ``NO_ACK``: a write reaches the device and is applied, but the answer is lost (``DeviceTimeout``);
* ``OK``: back to normal.

The device falls back to its fail-safe current once it has heard nothing for ``comm_timeout_s``, and resumes its
last setpoint the instant it hears the gateway again: the harsher of the behaviours real devices show.

Fakes rather than Modbus because the hypothesis property runs hundreds of minutes of site operation per test; the
same supervisor over loopback Modbus is tested in ``tests/integration/test_supervisor_*``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum

from drivers.errors import DeviceTimeout
from drivers.model import ChargerCapabilities, ChargerReading, Iec61851State
from drivers.sim.vehicle import Vehicle, VehicleSpec

TIMEOUT_S = 0.5
"""Transaction timeout of the fake link."""


class LinkMode(Enum):
    OK = "ok"
    DOWN = "down"
    LAG = "lag"
    NO_ACK = "no ack"


class FakeCharger:
    def __init__(self, clock: Callable[[], float], *, max_current_a: float = 32.0, comm_timeout_s: float = 10.0,
                 has_failsafe: bool = True, lag_s: float = 1.0) -> None:
        self.clock = clock
        self._capabilities = ChargerCapabilities(max_current_a=max_current_a, has_failsafe=has_failsafe,
                                                 can_read_setpoint=True)
        self.comm_timeout_s = comm_timeout_s
        self.mode = LinkMode.OK
        self.lag_s = lag_s
        self.setpoint_a = 0.0
        self.failsafe_a = 0.0
        self.last_contact_s = clock()
        self.vehicle: Vehicle | None = None
        self.log: list[tuple[float, str, float]] = []
        """(time, "write start" / "write applied" / "write acked", amps) of every setpoint write."""
        self.recovered_s = -1e9
        """When the link last came back from DOWN."""

    # -- the test's handles ------------------------------------------------------------------------------------
    def set_mode(self, mode: LinkMode) -> None:
        if self.mode is LinkMode.DOWN and mode is not LinkMode.DOWN:
            self.recovered_s = self.clock()
        self.mode = mode

    def plug(self, spec: VehicleSpec) -> None:
        self.vehicle = Vehicle(spec)
        self.vehicle.offer(self.pilot_a(), self.clock())

    def unplug(self) -> None:
        self.vehicle = None

    def pilot_a(self) -> float:
        """What the device offers the car now."""
        if self.capabilities.has_failsafe and self.clock() - self.last_contact_s > self.comm_timeout_s:
            return self.failsafe_a
        return self.setpoint_a

    def currents_a(self) -> tuple[float, float, float]:
        """Physical current on the charger's L1..L3 now."""
        if self.vehicle is None:
            return (0.0, 0.0, 0.0)
        expiry = self.last_contact_s + self.comm_timeout_s
        if self.capabilities.has_failsafe and self.clock() > expiry:
            self.vehicle.offer(self.failsafe_a, expiry)  # the pilot changed when the watchdog expired
        else:
            self.vehicle.offer(self.setpoint_a, self.clock())
        self.vehicle.advance(self.clock())
        return self.vehicle.phase_currents_a()

    # -- ChargerDriver -------------------------------------------------------------------------------------------
    @property
    def capabilities(self) -> ChargerCapabilities:
        return self._capabilities

    async def _exchange(self) -> None:
        if self.mode is LinkMode.DOWN:
            await asyncio.sleep(TIMEOUT_S)
            raise DeviceTimeout("no answer")
        if self.mode is LinkMode.LAG:
            await asyncio.sleep(self.lag_s)
        self._contact()

    def _contact(self) -> None:
        self.currents_a()  # the car saw the pilot up to now
        self.last_contact_s = self.clock()
        if self.vehicle is not None:
            self.vehicle.offer(self.pilot_a(), self.clock())

    async def read(self) -> ChargerReading:
        await self._exchange()
        currents = self.currents_a()
        state = Iec61851State.A
        if self.vehicle is not None:
            state = self.vehicle.state(self.clock())
        return ChargerReading(state=state, current_a=currents, setpoint_a=self.pilot_a(), enabled=True)

    async def write_setpoint(self, current_a: float) -> None:
        self.log.append((self.clock(), "write start", current_a))
        if self.mode is LinkMode.NO_ACK:
            self._apply(current_a)
            await asyncio.sleep(TIMEOUT_S)
            raise DeviceTimeout("answer lost")
        await self._exchange()
        self._apply(current_a)
        self.log.append((self.clock(), "write acked", current_a))

    def _apply(self, current_a: float) -> None:
        self.currents_a()
        self.setpoint_a = current_a
        self._contact()
        self.log.append((self.clock(), "write applied", current_a))

    async def keep_alive(self) -> None:
        if self.mode is not LinkMode.DOWN:
            self._contact()

    async def configure_failsafe(self, current_a: float, timeout_s: float) -> None:
        if self.mode is LinkMode.NO_ACK:
            self.currents_a()
            self.failsafe_a = current_a
            await asyncio.sleep(TIMEOUT_S)
            raise DeviceTimeout("answer lost")
        await self._exchange()
        self.failsafe_a = current_a
        self.comm_timeout_s = timeout_s

    async def close(self) -> None:
        """Nothing to release."""
