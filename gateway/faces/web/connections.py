"""The web face's HTTP connections: a cap on how many, and a deadline for each request's head.

uvicorn accepts every connection and keeps it as long as the client likes until a first request arrives (its
keep-alive timer only starts after a response), so idle connections pile up until the process runs out of file
handles, and then nothing can be accepted anywhere: not the installer's page, not a BMS, not a charger. Here:

* at most ``MAX_CONNECTIONS`` at once. At the cap a new connection is let in and the one that has been idle (no
  request in progress) the longest is closed, logged once a minute; a flood of idle connections thus only evicts
  itself, and the installer's page gets in. If every connection is busy with a request, the new one is closed;
* a connection must send a complete request head within ``HEAD_TIMEOUT_S`` of opening, or of the previous response
  ending, or it is closed. A request in progress (a long live stream included) is never cut.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.runtime.log_limit import RateLimitedLog

log = logging.getLogger("gateway.faces.web")

MAX_CONNECTIONS = 64
"""A page holds two or three (the live stream, API calls); a few browsers and scripts fit many times over."""
HEAD_TIMEOUT_S = 15.0

_refusals = RateLimitedLog(log, interval_s=60.0)


class CappedH11Protocol(H11Protocol):
    max_connections = MAX_CONNECTIONS
    head_timeout_s = HEAD_TIMEOUT_S

    _deadline: asyncio.TimerHandle | None = None
    last_active_s = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.last_active_s = self.loop.time()
        # Connections already being closed (evicted a moment ago) do not count: their socket is on its way out.
        open_ = [c for c in self.connections if isinstance(c, CappedH11Protocol) and not c.transport.is_closing()]
        if len(open_) > self.max_connections:
            quietest = min((c for c in open_ if c is not self and c.idle), key=lambda c: c.last_active_s,
                           default=None)
            _refusals.warning("web: %d connections open, the most allowed; the one idle the longest was closed",
                              self.max_connections)
            if quietest is None:
                transport.abort()
                return
            quietest.transport.abort()
        self._arm()

    @property
    def idle(self) -> bool:
        """No request is being answered."""
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        self.last_active_s = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.last_active_s = self.loop.time()
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.head_timeout_s, self._head_overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_overdue(self) -> None:
        self._deadline = None
        if not self.idle:
            return  # a request is being answered: its own pace
        if not self.transport.is_closing():
            log.debug("web: %s sent no complete request within %g s: closed", self.client, self.head_timeout_s)
            self.transport.close()


def capped_protocol(max_connections: int, head_timeout_s: float) -> type[CappedH11Protocol]:
    """The protocol class for one server, with its own limits."""
    return type("ServerH11Protocol", (CappedH11Protocol,),
                {"max_connections": max_connections, "head_timeout_s": head_timeout_s})
