"""Who may write over the BMS face.

Reads are open to anyone who can reach the port: they reveal nothing a breaker label would not. A write changes
how much current a building draws, so over TCP it is accepted only from the addresses the installer listed, and
not at all in read-only mode. The RTU slave has no client address: whoever is wired to its RS-485 port is the
BMS, so only read-only mode restricts it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WriteAccess:
    def __init__(self, allowed: Iterable[Network], read_only: bool) -> None:
        self._allowed = tuple(allowed)
        self._read_only = read_only

    def permits_tcp(self, host: str) -> bool:
        if self._read_only:
            return False
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # A socket bound to "::" reports IPv4 clients as ::ffff:a.b.c.d; the installer listed a.b.c.d.
            address = address.ipv4_mapped
        return any(address in network for network in self._allowed)

    def permits_rtu(self) -> bool:
        return not self._read_only
