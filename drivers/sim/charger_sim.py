"""A charger that behaves like a real one behind any charger profile's register map.

What it does, per unit: takes setpoint, enable, fail-safe and heartbeat writes as the profile encodes them (and
refuses with exception 3 what the device would refuse: a setpoint between 0 and the minimum, above the maximum);
offers the resulting pilot current to the shared vehicle model, which follows after its lag; runs the
communication watchdog the profile describes (traffic, setpoint re-write, heartbeat or timeout re-write) and falls
back to its fail-safe current when it expires; and reports state, currents, voltages, power and energy encoded the
way the profile says, the state mapped through the profile's enum (or state rules) in reverse.

Time comes from an injected clock (seconds, any origin) and physics is evaluated lazily on each request, at the
exact instants things happened (a watchdog expiry is applied at its expiry time, not when the next request
arrives), so a test with a manual or fast clock is deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from drivers.codec import InvalidReading, Value
from drivers.model import Iec61851State
from drivers.profile import ChargerProfile, KeepAlive, PauseMethod
from drivers.sim.image import ILLEGAL_VALUE, ProfileImage
from drivers.sim.server import RegisterModel, Span, Table
from drivers.sim.vehicle import NOMINAL_VOLTAGE_V, Vehicle, VehicleSpec

DEFAULT_WATCHDOG_S = 60.0
"""The communication timeout of a simulated charger whose profile has a watchdog but no programmable timeout."""
LIFETIME_ENERGY_START_WH = 1_000_000.0


class SimCharger:
    """One simulated charger (one unit id). Implements ``drivers.sim.server.RegisterModel``."""

    def __init__(self, profile: ChargerProfile, clock: Callable[[], float], *, serial: str = "SIM-0001",
                 initial_setpoint_a: float = 0.0, nameplate_a: float | None = None) -> None:
        self.profile = profile
        self._clock = clock
        self.image = ProfileImage(profile)
        self.serial = serial
        self.nameplate_a = min(nameplate_a or profile.nameplate_a, profile.nameplate_a)
        self.setpoint_a = initial_setpoint_a
        self.enabled = not profile.quirks.write_needs_enable
        self.failsafe_current_a = 0.0
        self.failsafe_timeout_s = self._initial_timeout()
        self.in_failsafe = False
        self.forced_state: Iec61851State | None = None
        """Set to E or F to simulate a pilot error or a charger fault."""
        self.aux: dict[str, Value] = {}
        self.heartbeat_raw: Value = 0
        self._heartbeat_at = clock()
        self.vehicle: Vehicle | None = None
        self._finished_sessions_wh = 0.0
        self._last_keepalive = clock()
        self._state_values = _state_encodings(profile)

    def _initial_timeout(self) -> float:
        watchdog = self.profile.watchdog
        if watchdog.keep_alive is KeepAlive.NONE:
            return 0.0
        timeout = watchdog.fixed_timeout_s or DEFAULT_WATCHDOG_S
        if self.profile.points.failsafe_timeout is not None:
            fmt = self.profile.format_of("failsafe_timeout")
            timeout = min(max(timeout, fmt.valid_min or 0.0), fmt.valid_max or timeout)
        return timeout

    # -- the car ----------------------------------------------------------------------------------------------------
    def plug(self, spec: VehicleSpec) -> Vehicle:
        """A car arrives now (its spec's arrival and departure are taken relative to now)."""
        now = self._advance()
        self.unplug()
        shift = now - spec.arrival_s
        departure = None if spec.departure_s is None else spec.departure_s + shift
        self.vehicle = Vehicle(replace(spec, arrival_s=now, departure_s=departure))
        self.vehicle.offer(self.pilot_a, now)
        return self.vehicle

    def unplug(self) -> None:
        if self.vehicle is not None:
            self.vehicle.advance(self._clock())
            self._finished_sessions_wh += self.vehicle.energy_wh
            self.vehicle = None

    # -- what the charger does ----------------------------------------------------------------------------------
    @property
    def pilot_a(self) -> float:
        """The current the charger offers the car right now (0 = no charging)."""
        minimum = self.profile.control.min_current_a
        if self.forced_state is not None:
            return 0.0
        wanted = self.failsafe_current_a if self.in_failsafe else (self.setpoint_a if self.enabled else 0.0)
        return min(wanted, self.nameplate_a) if wanted >= minimum else 0.0

    def _advance(self) -> float:
        """Bring physics and the watchdog up to now; returns now."""
        now = self._clock()
        timeout = self.failsafe_timeout_s
        if timeout > 0 and not self.in_failsafe and now >= self._last_keepalive + timeout:
            expired_at = self._last_keepalive + timeout
            if self.vehicle is not None:
                self.vehicle.advance(expired_at)
            self.in_failsafe = True
            self._offer(expired_at)
        if self.vehicle is not None:
            self.vehicle.advance(now)
        return now

    def _offer(self, now: float) -> None:
        if self.vehicle is not None:
            self.vehicle.offer(self.pilot_a, now)

    def _keepalive(self, now: float) -> None:
        self._last_keepalive = now
        if self.in_failsafe:
            self.in_failsafe = False
            self._offer(now)

    def phase_currents_a(self) -> tuple[float, float, float]:
        self._advance()
        return self._currents()

    def _currents(self) -> tuple[float, float, float]:
        if self.vehicle is None:
            return (0.0, 0.0, 0.0)
        l1, l2, l3 = self.vehicle.phase_currents_a()
        return (l1, l2, l3) if self.profile.phases == 3 else (l1, 0.0, 0.0)

    def state(self) -> Iec61851State:
        now = self._advance()
        return self._state(now)

    def _state(self, now: float) -> Iec61851State:
        if self.forced_state is not None:
            return self.forced_state
        if self.vehicle is None:
            return Iec61851State.A
        return self.vehicle.state(now)

    def values(self) -> dict[str, Value]:
        """Every point's engineering value now, by point name."""
        now = self._advance()
        currents = self._currents()
        voltages = tuple(NOMINAL_VOLTAGE_V if i < self.profile.phases else 0.0 for i in range(3))
        session_wh = self.vehicle.energy_wh if self.vehicle is not None else 0.0
        control = self.profile.control
        values: dict[str, Value] = {**self.aux}
        values.update({
            "current_l1": currents[0], "current_l2": currents[1], "current_l3": currents[2],
            "voltage_l1": voltages[0], "voltage_l2": voltages[1], "voltage_l3": voltages[2],
            "power": sum(i * v for i, v in zip(currents, voltages, strict=True)),
            "energy": LIFETIME_ENERGY_START_WH + self._finished_sessions_wh + session_wh,
            "session_energy": session_wh,
            "setpoint": self.setpoint_a, "setpoint_readback": self.pilot_a,
            "enable": control.enable_on if self.enabled else control.enable_off,
            "failsafe_current": self.failsafe_current_a, "failsafe_timeout": self.failsafe_timeout_s,
            "heartbeat": self._heartbeat_readback(now), "nameplate": self.nameplate_a,
            "serial": self.serial, "firmware": "sim-1.0", "model": self.profile.models[0],
            "error_code": 1 if self._state(now) is Iec61851State.F else 0,
        })
        values.update(self._state_values.get(self._state(now), {}))
        return values

    def extra_units(self) -> dict[int, RegisterModel]:
        """Unit ids besides its own that this charger answers on (Alfen: station registers on unit 200)."""
        ids = {p.device_id for p in self.profile.all_points().values() if p.device_id is not None}
        return {device_id: _OtherUnit(self, ProfileImage(self.profile, device_id)) for device_id in sorted(ids)}

    def _heartbeat_readback(self, now: float) -> Value:
        """A life bit: the charger clears it when it checks it, every half timeout (Vestel/Webasto style)."""
        if self.failsafe_timeout_s > 0 and now - self._heartbeat_at >= self.failsafe_timeout_s / 2:
            return 0
        return self.heartbeat_raw

    # -- RegisterModel ----------------------------------------------------------------------------------------
    def spans(self) -> Mapping[Table, Sequence[Span]]:
        return self.image.spans()

    def read(self, table: Table, address: int, count: int, *, garbage: bool) -> list[int]:
        values = self.values()
        if self.profile.watchdog.keep_alive is KeepAlive.TRAFFIC:
            self._keepalive(self._clock())
        return self.image.read(table, address, count, values, garbage=garbage)

    def write(self, table: Table, address: int, values: Sequence[int], function_code: int) -> int | None:
        written = self.image.decode_write(table, address, values, function_code)
        if isinstance(written, int):
            return written
        now = self._advance()
        refused = self._refuse(written)
        if refused is not None:
            return refused
        keep = self.profile.watchdog.keep_alive
        alive = keep is KeepAlive.TRAFFIC
        for name, value in written.items():
            if name == "setpoint":
                self.setpoint_a = float(value)
                alive = alive or keep is KeepAlive.SETPOINT
            elif name == "enable":
                self.enabled = value == self.profile.control.enable_on
            elif name == "failsafe_current":
                self.failsafe_current_a = float(value)
            elif name == "failsafe_timeout":
                self.failsafe_timeout_s = float(value)
                alive = alive or keep is KeepAlive.TIMEOUT
            elif name == "heartbeat":
                self.heartbeat_raw = value
                self._heartbeat_at = now
                alive = alive or (keep is KeepAlive.HEARTBEAT and value == self.profile.watchdog.heartbeat_value)
            else:
                self.aux[name] = value
        if alive:
            self._keepalive(now)
        self._offer(now)
        return None

    def _refuse(self, written: Mapping[str, Value]) -> int | None:
        """Exception 3 for what a real controller refuses, so a driver that sends it is caught."""
        control = self.profile.control
        for name in ("setpoint", "failsafe_current"):
            if name not in written:
                continue
            current = float(written[name])
            if not math.isfinite(current) or current > self.profile.max_setpoint_a + 1e-9:
                return ILLEGAL_VALUE
            if 0 < current < control.min_current_a - 1e-9 and not (
                    name == "setpoint" and control.pause is PauseMethod.DISABLE):
                return ILLEGAL_VALUE
        return None


class _OtherUnit:
    """The points a charger serves under another unit id, from the same live values."""

    def __init__(self, charger: SimCharger, image: ProfileImage) -> None:
        self.charger = charger
        self.image = image

    def spans(self) -> Mapping[Table, Sequence[Span]]:
        return self.image.spans()

    def read(self, table: Table, address: int, count: int, *, garbage: bool) -> list[int]:
        return self.image.read(table, address, count, self.charger.values(), garbage=garbage)

    def write(self, table: Table, address: int, values: Sequence[int], function_code: int) -> int | None:
        written = self.image.decode_write(table, address, values, function_code)
        if isinstance(written, int):
            return written
        self.charger.aux.update(written)
        return None


def _state_encodings(profile: ChargerProfile) -> dict[Iec61851State, dict[str, Value]]:
    """For each IEC state, point values the profile decodes back to that state (its enum or rules in reverse)."""
    if not profile.state_rules:
        enum = profile.points.state.enum if profile.points.state is not None else None
        letters = set((enum or {}).values())
        return {state: {"state": state.value} for state in Iec61851State if state.value in letters}
    names = profile.state_points()
    options: list[list[Value]] = []
    for name in names:
        seen: list[Value] = []
        for rule in profile.state_rules:
            seen += [v for v in rule.when.get(name, ()) if v not in seen]
        fmt = profile.format_of(name)
        if fmt.enum is not None:
            seen += [v for v in fmt.enum.values() if v not in seen]
        options.append([*seen, 0] if 0 not in seen else seen)
    found: dict[Iec61851State, dict[str, Value]] = {}
    for combo in itertools.product(*options):
        candidate = dict(zip(names, combo, strict=True))
        decoded = {}
        for name, value in candidate.items():
            try:
                decoded[name] = profile.decode(name, profile.encode(name, value))
            except ValueError:
                break
        else:
            state = profile.derive_state(decoded)
            if not isinstance(state, InvalidReading) and state not in found:
                found[state] = candidate
    return found
