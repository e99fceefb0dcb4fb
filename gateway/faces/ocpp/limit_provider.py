"""The OCPP face as a limit source for the supervisor (``gateway.core.limits.LimitProvider``).

* Site: the ChargePointMaxProfile in force (``limits_at(...).site_a``), the same on every phase.
* Each charger (connector n): min(ChargePointMax, TxProfile or else TxDefaultProfile) from ``limits_at``, and 0 A
  where the OCPP side says no energy: Inoperative (ChangeAvailability), not authorised yet, after a stop.
* ``next_change``: when a schedule period starts or ends by itself, so the control loop wakes at that instant.

The supervisor merges the caps with the installer's unit limits by taking the least, so an OCPP limit never
raises anything. Synchronous and cheap: called at every control step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gateway.core.limits import PerPhase
from gateway.faces.ocpp.smart_charging import Electrical, ProfileStore, limits_at, next_change


class OcppLimits:
    def __init__(self, store: ProfileStore, electrical: Electrical, charger_ids: Sequence[str]) -> None:
        """``charger_ids[n - 1]`` is connector n."""
        self.store = store
        self.electrical = electrical
        self.charger_ids = tuple(charger_ids)
        self._blocked: frozenset[int] = frozenset()
        self._wakers: list[Callable[[], None]] = []

    def site_limit_a(self, wall: float) -> PerPhase | None:
        site = limits_at(self.store, self.electrical, wall).site_a
        return None if site is None else (site, site, site)

    def unit_caps_a(self, wall: float) -> Mapping[str, float]:
        caps: dict[str, float] = {}
        for n, limit in enumerate(limits_at(self.store, self.electrical, wall).connectors_a, start=1):
            cid = self.charger_ids[n - 1]
            if n in self._blocked:
                caps[cid] = 0.0
            elif limit is not None:
                caps[cid] = limit
        return caps

    def next_change(self, wall: float) -> float | None:
        return next_change(self.store, self.electrical, wall)

    def on_change(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)

    @property
    def blocked(self) -> frozenset[int]:
        return self._blocked

    def block(self, connectors: frozenset[int]) -> None:
        """Connectors held at 0 A from now on (the others lose that cap)."""
        if connectors != self._blocked:
            self._blocked = connectors
            self.changed()

    def changed(self) -> None:
        """The profiles changed (Set/Clear, a transaction started or ended): act on it at once."""
        for wake in self._wakers:
            wake()
