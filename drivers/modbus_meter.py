"""The one Modbus meter driver: a site or sub-circuit meter read through its profile.

A meter feeds the limit the gateway shares, so a nonsense value must never look like a measurement: it is left as
``None`` and named in ``reading.invalid`` (the gateway then falls back to its configured safe value).
"""

from __future__ import annotations

from drivers.bus import ModbusBus
from drivers.codec import Decoded
from drivers.modbus_charger import PointValues, read_block
from drivers.model import MeterReading
from drivers.profile import MeterProfile


class ModbusMeter:
    """``drivers.ports.MeterDriver`` for any meter profile on a shared bus; ``close`` releases nothing."""

    def __init__(self, profile: MeterProfile, bus: ModbusBus, unit: int, *, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout must be > 0")
        self.profile = profile
        self.bus = bus
        self.unit = unit
        self.timeout_s = timeout_s
        self._plan = profile.read_plan()
        if profile.quirks.inter_frame_gap_ms:
            bus.require_gap(unit, profile.quirks.inter_frame_gap_ms / 1000.0)
        self.last_invalid: dict[str, str] = {}

    async def read(self) -> MeterReading:
        decoded: dict[str, Decoded] = {}
        for block in self._plan:
            decoded.update(self.profile.decode_block(block, await read_block(self.bus, self.unit, block,
                                                                             self.timeout_s)))
        values = PointValues(decoded)
        reading = MeterReading(current_a=values.phases("current"), voltage_v=values.phases("voltage"),
                               power_w=values.number("power"), energy_import_wh=values.number("energy_import"),
                               invalid=tuple(sorted(values.invalid)))
        self.last_invalid = dict(values.invalid)
        return reading

    async def close(self) -> None:
        """Nothing to release: the bus belongs to the pool."""
