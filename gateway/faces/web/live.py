"""Live data for the page: one reader of the gateway's snapshots, fanned out to every open page.

The web server owns a single task that follows ``GatewayControl.updates()``. It hands each snapshot to every
open page through a mailbox (``Page``) that keeps only the newest message of each kind, so a slow page skips
snapshots instead of building a backlog. When the server stops, every page's stream is told to end, so shutdown
never waits on a browser. (The chart's points come from the gateway's history, ``gateway.runtime.history``.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from gateway.faces.web.schemas import event_out, status_out
from gateway.runtime.commands import GatewayControl


class Page:
    """One open page's mailbox: the newest message of each kind, in the order they last changed.

    A page that reads slowly skips intermediate snapshots but never misses a kind: the newest status and the
    newest event log are always delivered.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, event: str, data: Any) -> None:
        self._pending.pop(event, None)
        self._pending[event] = data
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def take(self) -> list[tuple[str, Any]]:
        """Everything pending, waiting for something first; an empty list once the page is closed."""
        await self._ready.wait()
        self._ready.clear()
        if self.closed:
            return []
        items = list(self._pending.items())
        self._pending.clear()
        return items


class Broadcast:
    def __init__(self) -> None:
        self._pages: list[Page] = []
        self._closed = False
        self._next_snapshot = asyncio.Event()

    def next_snapshot(self) -> asyncio.Event:
        """Set when the next snapshot after this call has been published (a write waits for its effect)."""
        return self._next_snapshot

    def published(self) -> None:
        self._next_snapshot.set()
        self._next_snapshot = asyncio.Event()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Page]:
        page = Page()
        if self._closed:
            page.close()
        self._pages.append(page)
        try:
            yield page
        finally:
            self._pages.remove(page)

    @property
    def listeners(self) -> int:
        return len(self._pages)

    def send(self, event: str, data: Any) -> None:
        for page in self._pages:
            page.put(event, data)

    def close(self) -> None:
        """Every stream ends; streams opened from now on end at once."""
        self._closed = True
        for page in self._pages:
            page.close()


async def follow(control: GatewayControl, site_name: str, broadcast: Broadcast) -> None:
    """Runs until cancelled: fan out every snapshot, and the event log whenever it grew."""
    last_event = control.recent_events()[-1:] or None
    updates = control.updates()
    try:
        async for status in updates:
            broadcast.published()
            if broadcast.listeners:
                broadcast.send("status", status_out(status, site_name).model_dump(mode="json"))
            events = control.recent_events()
            if events and (last_event is None or events[-1] != last_event[0]):
                last_event = events[-1:]
                broadcast.send("events", [event_out(e).model_dump(mode="json") for e in events])
    finally:
        await updates.aclose()  # type: ignore[attr-defined]  # an async generator, typed as its iterator
