"""A vehicle as a charger sees it: what it draws for what it is offered, over (virtual or real) time.

The same model sits behind the Modbus charger simulator, the OCPP charger simulator, the virtual-time site and the
benchmark's offline optimum, so that a figure measured in one place means the same in the others. It is pure: time
is passed in, nothing here reads a clock.

Physics, deliberately simple but with the behaviours that make power sharing hard:

* an onboard charger limit (6–48 A per phase) and 1, 2 or 3 phases;
* a response lag (1–5 s, IEC 61851-1 allows up to 5 s) between a new offer and the current following it,
  for decreases as well as increases: this is why a shift from one charger to another must wait;
* it stops drawing when offered less than 6 A;
* taper above 80 % state of charge: the current it takes falls linearly to zero at 100 %
  (``limit × (1 − soc) / 0.2``), floored at 6 A so a session always ends. The taper is linear in the state of
  charge so the benchmark's linear program can model it exactly;
* arrival and departure times; it leaves at departure whatever its state of charge;
* a change of phases mid-session (``switches_to_phases`` after ``switch_after_s``): real cars do start on one
  phase and close their other contactors later, drawing their offer on every phase from that instant on. A
  controller that freed a 1-phase car's other phases for other chargers overloads them until it notices.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.model import Iec61851State

MIN_CURRENT_A = 6.0
TAPER_START_SOC = 0.8
NOMINAL_VOLTAGE_V = 230.0


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """Everything that defines one visit of one car."""

    name: str
    onboard_limit_a: float = 32.0
    phases: int = 3
    battery_kwh: float = 60.0
    soc_start: float = 0.3
    soc_target: float = 1.0
    arrival_s: float = 0.0
    departure_s: float | None = None
    lag_s: float = 2.0
    voltage_v: float = NOMINAL_VOLTAGE_V
    switches_to_phases: int | None = None
    """The phases it draws on from ``switch_after_s`` after arrival on (None: ``phases`` throughout)."""
    switch_after_s: float = 0.0

    def __post_init__(self) -> None:
        if not MIN_CURRENT_A <= self.onboard_limit_a <= 80.0:
            raise ValueError(f"{self.name}: onboard_limit_a {self.onboard_limit_a} outside 6..80 A")
        if self.phases not in (1, 2, 3) or self.switches_to_phases not in (None, 1, 2, 3):
            raise ValueError(f"{self.name}: phases must be 1, 2 or 3")
        if self.switch_after_s < 0:
            raise ValueError(f"{self.name}: switch_after_s must be >= 0")
        if not 0.0 <= self.soc_start <= self.soc_target <= 1.0:
            raise ValueError(f"{self.name}: need 0 <= soc_start <= soc_target <= 1")
        if self.battery_kwh <= 0 or self.lag_s < 0:
            raise ValueError(f"{self.name}: battery_kwh must be > 0 and lag_s >= 0")
        if self.departure_s is not None and self.departure_s <= self.arrival_s:
            raise ValueError(f"{self.name}: departure before arrival")


def taper_limit_a(onboard_limit_a: float, soc: float) -> float:
    """The most current the battery accepts at this state of charge (before the 6 A floor)."""
    if soc <= TAPER_START_SOC:
        return onboard_limit_a
    return onboard_limit_a * max(0.0, 1.0 - soc) / (1.0 - TAPER_START_SOC)


class Vehicle:
    """One car plugged into one charger. Call ``offer`` when the pilot changes and ``advance`` to move time."""

    def __init__(self, spec: VehicleSpec) -> None:
        self.spec = spec
        self.soc = spec.soc_start
        self.energy_wh = 0.0
        self._time = spec.arrival_s
        self._offered_a = 0.0
        self._effective_offer_a = 0.0
        self._pending: list[tuple[float, float]] = []  # (time it takes effect, offered current)
        self._drawn_a = 0.0

    # -- inputs -----------------------------------------------------------------------------------------------
    def offer(self, current_a: float, now: float) -> None:
        """The charger's pilot now offers ``current_a``; the car follows after its lag."""
        if current_a == self._offered_a:
            return
        self._offered_a = current_a
        self._pending.append((now + self.spec.lag_s, current_a))

    def advance(self, now: float) -> None:
        """Integrate energy and state of charge up to ``now``."""
        if now <= self._time:
            return
        end = now if self.spec.departure_s is None else min(now, self.spec.departure_s)
        while self._time < end:
            next_change = self._pending[0][0] if self._pending else end
            switch = self.switch_at_s
            if switch is not None and self._time < switch < next_change:
                next_change = switch  # the draw moves to more (or fewer) phases at this instant
            segment_end = min(end, max(next_change, self._time))
            if segment_end > self._time:
                self._integrate(segment_end - self._time)
                self._time = segment_end
            while self._pending and self._pending[0][0] <= self._time:
                self._effective_offer_a = self._pending.pop(0)[1]
            self._drawn_a = self._draw_for(self._effective_offer_a)
        self._time = max(self._time, now)
        self._drawn_a = self._draw_for(self._effective_offer_a) if self.present(now) else 0.0

    def _integrate(self, dt_s: float) -> None:
        """Advance by dt at the current draw, splitting where the taper changes the draw materially."""
        remaining = dt_s
        while remaining > 0:
            self._drawn_a = self._draw_for(self._effective_offer_a)
            if self._drawn_a <= 0:
                return
            step = min(remaining, 1.0)
            power_w = self._drawn_a * self.spec.voltage_v * self.phases
            energy_wh = power_w * step / 3600.0
            room_wh = (self.spec.soc_target - self.soc) * self.spec.battery_kwh * 1000.0
            if energy_wh >= room_wh:
                energy_wh = max(0.0, room_wh)
                self.soc = self.spec.soc_target
                self.energy_wh += energy_wh
                self._drawn_a = 0.0
                return
            self.energy_wh += energy_wh
            self.soc += energy_wh / (self.spec.battery_kwh * 1000.0)
            remaining -= step

    def _draw_for(self, offered_a: float) -> float:
        if offered_a < MIN_CURRENT_A or self.full:
            return 0.0
        accepts = max(taper_limit_a(self.spec.onboard_limit_a, self.soc), MIN_CURRENT_A)
        return min(offered_a, self.spec.onboard_limit_a, accepts)

    # -- outputs ----------------------------------------------------------------------------------------------
    def present(self, now: float) -> bool:
        departed = self.spec.departure_s is not None and now >= self.spec.departure_s
        return self.spec.arrival_s <= now and not departed

    @property
    def full(self) -> bool:
        return self.soc >= self.spec.soc_target - 1e-9

    @property
    def switch_at_s(self) -> float | None:
        """When it changes phases (None: never)."""
        if self.spec.switches_to_phases is None:
            return None
        return self.spec.arrival_s + self.spec.switch_after_s

    @property
    def phases(self) -> int:
        """The phases it draws on at the time it was last advanced to."""
        switch = self.switch_at_s
        if switch is not None and self.spec.switches_to_phases is not None and self._time >= switch:
            return self.spec.switches_to_phases
        return self.spec.phases

    @property
    def drawn_a(self) -> float:
        """Current per active phase right now."""
        return self._drawn_a

    def phase_currents_a(self) -> tuple[float, float, float]:
        """Current on the charger's L1, L2, L3: a 1-phase car draws on L1 only, a 2-phase car on L1 and L2."""
        i, phases = self._drawn_a, self.phases
        return (i, i if phases >= 2 else 0.0, i if phases == 3 else 0.0)

    def state(self, now: float) -> Iec61851State:
        if not self.present(now):
            return Iec61851State.A
        return Iec61851State.C if self._drawn_a > 0 else Iec61851State.B
