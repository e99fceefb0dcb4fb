"""The site file's transports as the drivers library's endpoints (``drivers`` must not import ``gateway``).

Chargers whose transports name the same line (the same serial device, or the same host and port) get the same
endpoint, so ``drivers.bus.BusPool`` hands them one shared bus.
"""

from __future__ import annotations

from drivers.transport import Endpoint, SerialLine, TcpEndpoint
from gateway.site.config import RtuOverTcpTransport, RtuTransport, TcpTransport


def endpoint_of(transport: TcpTransport | RtuOverTcpTransport | RtuTransport) -> Endpoint:
    if isinstance(transport, RtuTransport):
        return SerialLine(transport.device, transport.baudrate, transport.parity, transport.stopbits,
                          transport.bytesize)
    return TcpEndpoint(transport.host, transport.port, rtu_framing=isinstance(transport, RtuOverTcpTransport))
