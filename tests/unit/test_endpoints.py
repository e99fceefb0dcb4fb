"""Site-file transports become driver endpoints; chargers on one line share one bus."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from drivers.bus import BusPool
from drivers.transport import SerialLine, TcpEndpoint
from gateway.runtime.endpoints import endpoint_of
from gateway.site.config import Transport

ADAPTER: TypeAdapter[Any] = TypeAdapter(Transport)


def transport(**data: object) -> Any:
    return ADAPTER.validate_python(data)


async def test_transports_become_endpoints_and_one_line_is_one_bus() -> None:
    a = endpoint_of(transport(type="rtu", device="/dev/ttyUSB0", baudrate=19200, parity="E", unit=1))
    b = endpoint_of(transport(type="rtu", device="/dev/ttyUSB0", baudrate=19200, parity="E", unit=2))
    assert a == b == SerialLine("/dev/ttyUSB0", 19200, "E", 1, 8)
    assert endpoint_of(transport(type="tcp", host="10.0.0.5")) == TcpEndpoint("10.0.0.5", 502)
    gateway = endpoint_of(transport(type="rtu-over-tcp", host="10.0.0.6", port=4001))
    assert gateway == TcpEndpoint("10.0.0.6", 4001, rtu_framing=True)
    pool = BusPool()
    assert pool.bus_for(a) is pool.bus_for(b)
    await pool.close()
