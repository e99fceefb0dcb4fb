"""The web face's HTTP connections: a cap on how many, and a deadline for each request's head.

uvicorn accepts every connection and keeps it as long as the client likes until a first request arrives (its
keep-alive timer only starts after a response), so idle connections pile up until the process runs out of file
handles, and then nothing can be accepted anywhere: not the installer's page, not a BMS, not a charger. Here:

* at most ``MAX_CONNECTIONS`` at once; one more is closed as soon as it is accepted, logged once a minute;
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

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            _refusals.warning("web: %d connections open, the most allowed; a connection from %s was closed",
                              self.max_connections, self.client)
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
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
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its own pace
        if not self.transport.is_closing():
            log.debug("web: %s sent no complete request within %g s: closed", self.client, self.head_timeout_s)
            self.transport.close()


def capped_protocol(max_connections: int, head_timeout_s: float) -> type[CappedH11Protocol]:
    """The protocol class for one server, with its own limits."""
    return type("ServerH11Protocol", (CappedH11Protocol,),
                {"max_connections": max_connections, "head_timeout_s": head_timeout_s})
