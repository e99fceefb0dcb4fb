"""A plain register memory behind ``SimServer``, for bus tests that need no profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from drivers.sim.server import Span, Table


class MemoryModel:
    """Holding registers 100..109 (writable) and input registers 0..19; a write of 0xDEAD is refused (exc 3)."""

    REFUSED = 0xDEAD

    def __init__(self, seed: int = 0) -> None:
        self.holding = {100 + i: seed + i for i in range(10)}
        self.input = {i: seed * 100 + i for i in range(20)}
        self.coils = {i: False for i in range(16)}

    def spans(self) -> Mapping[Table, Sequence[Span]]:
        return {"holding": [Span(100, 10, writable=True)], "input": [Span(0, 20)],
                "coil": [Span(0, 16, writable=True)]}

    def read(self, table: Table, address: int, count: int, *, garbage: bool) -> list[int]:
        if garbage:
            return [0xFFFF] * count
        if table == "coil":
            return [int(self.coils.get(a, False)) for a in range(address, address + count)]
        memory = self.holding if table == "holding" else self.input
        return [memory.get(a, 0) for a in range(address, address + count)]

    def write(self, table: Table, address: int, values: Sequence[int], function_code: int) -> int | None:
        if table == "coil":
            for i, v in enumerate(values):
                self.coils[address + i] = bool(v)
            return None
        if self.REFUSED in values:
            return 3
        for i, v in enumerate(values):
            self.holding[address + i] = v
        return None
