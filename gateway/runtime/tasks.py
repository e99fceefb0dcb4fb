"""The owner of the gateway's long-lived tasks: pollers, the control loop, and the faces' loops.

A long-lived task must never die unnoticed. When one raises anything (a ``DriverError`` is handled where it is
raised; what reaches here is a bug or a device the library did not foresee, such as a ``ValueError`` from a
profile's encoder), the supervisor of tasks

* logs it once with its traceback (a task that keeps crashing logs one line per further crash, no traceback),
* tells the task's owner through ``on_crash`` (a poller books its chargers as unreachable),
* counts the task as *down*, which the read model shows as ``GatewayHealth.FAULT``,
* restarts it after a capped exponential backoff, and counts it as up again once it has run ``settle_s`` without
  crashing, or, for a task that works in rounds (a poller), once it reports a whole round done with ``ran``:
  a round on a line with dead units can take longer than any fixed time. A task that crashes at every start stays
  down, and the gateway stays in FAULT.

Cancellation is how a task is stopped, never a crash; stopping uses ``drivers.aio.cancel_and_wait``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from drivers.aio import cancel_and_wait

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MOST_BACKOFF_S = 60.0
SETTLE_S = 10.0

Runner = Callable[[], Coroutine[Any, Any, None]]
CrashHandler = Callable[[Exception], None]


@dataclass
class _Entry:
    run: Runner
    on_crash: CrashHandler | None
    by_rounds: bool = False
    task: asyncio.Task[None] | None = None
    crashes: int = 0
    """Crashes since the task last counted as up: the backoff's exponent."""
    settle: asyncio.TimerHandle | None = None
    last_error: str | None = None


@dataclass
class TaskSupervisor:
    """Starts, restarts and stops named long-lived tasks; ``down`` names those that crashed and have not settled."""

    first_backoff_s: float = FIRST_BACKOFF_S
    most_backoff_s: float = MOST_BACKOFF_S
    settle_s: float = SETTLE_S
    _entries: dict[str, _Entry] = field(default_factory=dict, init=False)
    _down: dict[str, str] = field(default_factory=dict, init=False)
    _listeners: list[Callable[[], None]] = field(default_factory=list, init=False)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a task goes down or comes back up."""
        self._listeners.append(listener)

    @property
    def down(self) -> dict[str, str]:
        """Tasks that are down, by name, with the error that brought each down."""
        return dict(self._down)

    def is_down(self, name: str) -> bool:
        return name in self._down

    def restarts(self, name: str) -> int:
        """How many times ``name`` crashed since it last counted as up."""
        entry = self._entries.get(name)
        return entry.crashes if entry is not None else 0

    def start(self, name: str, run: Runner, *, on_crash: CrashHandler | None = None, by_rounds: bool = False
              ) -> None:
        """Run ``run()`` as the task ``name`` (which must not be running) and keep it running. ``by_rounds``: after
        a crash it counts as up again when it calls ``ran(name)``, not after ``settle_s``."""
        if name in self._entries:
            raise ValueError(f"task {name} is already running")
        entry = _Entry(run, on_crash, by_rounds)
        self._entries[name] = entry
        entry.task = asyncio.create_task(self._keep(name, entry), name=name)

    async def stop(self, name: str) -> None:
        """Cancel ``name`` and wait until it has ended; it no longer counts as down."""
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        if entry.settle is not None:
            entry.settle.cancel()
        await cancel_and_wait(entry.task)
        if self._down.pop(name, None) is not None:
            self._changed()

    async def stop_all(self) -> None:
        """Stop every task (all cancelled at once, then awaited)."""
        entries, self._entries = self._entries, {}
        for entry in entries.values():
            if entry.settle is not None:
                entry.settle.cancel()
        await cancel_and_wait([e.task for e in entries.values()])
        if self._down:
            self._down.clear()
            self._changed()

    def names(self) -> list[str]:
        return list(self._entries)

    def ran(self, name: str) -> None:
        """``name`` finished a whole round of its work: if it was down, it is up again."""
        entry = self._entries.get(name)
        if entry is not None and name in self._down:
            self._settled(name, entry)

    async def _keep(self, name: str, entry: _Entry) -> None:
        while True:
            try:
                await entry.run()
            except Exception as exc:
                self._crashed(name, entry, exc)
            else:
                log.info("task %s ended", name)
                self._entries.pop(name, None)
                return
            await asyncio.sleep(self._backoff_s(entry.crashes))
            log.info("task %s restarting (after %d crash%s)", name, entry.crashes, "es" if entry.crashes > 1 else "")
            if not entry.by_rounds:
                entry.settle = asyncio.get_running_loop().call_later(self.settle_s, self._settled, name, entry)

    def _backoff_s(self, crashes: int) -> float:
        return min(self.most_backoff_s, self.first_backoff_s * float(2 ** min(max(crashes - 1, 0), 30)))

    def _crashed(self, name: str, entry: _Entry, exc: Exception) -> None:
        if entry.settle is not None:
            entry.settle.cancel()
            entry.settle = None
        entry.crashes += 1
        error = f"{type(exc).__name__}: {exc}"
        if name not in self._down:
            log.error("task %s crashed; restarting it in %g s", name, self._backoff_s(entry.crashes), exc_info=exc)
        else:
            log.warning("task %s crashed again: %s", name, error)
        entry.last_error = error
        if entry.on_crash is not None:
            try:
                entry.on_crash(exc)
            except Exception:
                log.exception("task %s: crash handler failed", name)
        was_down = name in self._down
        self._down[name] = error
        if not was_down:
            self._changed()

    def _settled(self, name: str, entry: _Entry) -> None:
        entry.settle = None
        entry.crashes = 0
        if self._entries.get(name) is entry and self._down.pop(name, None) is not None:
            log.warning("task %s running again", name)
            self._changed()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()
