"""The BMS as a limit source: the network limit it writes, its watchdog and fallback limit, saved without wearing
the flash card.

A BMS (or the MQTT face, which carries the BMS face's writes) may write its limit every few seconds, inside a
Modbus request that must answer quickly and must never wait for the disk. So a BMS limit is not a commissioning
setting: it is held here, checked by its own rule only (``SiteSettings.check_network_limit``, the site file's rule
for a network limit, never the whole site), and fed to ``gateway.core.limits`` as ``LimitSource.BMS``.

*Replaces, not caps.* HR0 is the network limit (docs/bms.md): the BMS's value stands in for the installer's network
limit, as it did when both wrote the same setting. The last writer wins: an installer who sets the network limit
(the page, or an edit of the site file's ``network_limit_a`` seen at start) releases the BMS's value until the BMS
writes again.

*The watchdog* is owned here too: the timeout and the fallback limit (HR2, HR3), and when the BMS was last heard
(a limit write or a heartbeat, on the supervisor's clock). Whether the fallback is in force, and from when, is the
pure rule ``gateway.core.limits.bms_fallback_in_force``.

*Saving.* Every change marks the state unsaved; nothing here touches the disk while a request is answered. The
supervisor's control step asks ``save_due`` (on its injected clock): a limit is saved at most once per
``PERSIST_INTERVAL_S``, a change of the watchdog, the fallback or a release at the next step (they are rare, and
losing one would be silent). The write itself (temporary file, fsync, rename, fsync of the directory) runs on a
worker thread (``save``), so neither the Modbus requests nor the control loop wait for it; ``flush`` writes what is
left at a clean stop. What a kill -9 or a power cut loses: the BMS limits written since the last save, at most
``PERSIST_INTERVAL_S`` of them; after the restart the limit saved before applies until the BMS writes again, and if
it does not, its watchdog governs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from gateway.core.limits import bms_fallback_in_force, bms_watchdog_deadline
from gateway.i18n.text import tr
from gateway.runtime.commands import CommandRejected
from gateway.site.settings import PERSIST_INTERVAL_S, SiteSettings, check_amps
from gateway.site.store import JsonStore, StoreError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_WATCHDOG_S = 65535.0


class BmsLimit:
    """The BMS's network limit and watchdog; ``store`` None keeps them in memory only."""

    def __init__(self, settings: SiteSettings, store: JsonStore | None, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._store = store
        self.limit_a: float | None = None
        """The network limit the BMS wrote; None: it holds none, the installer's applies."""
        self._file_network_a = settings.config.network_limit_a
        """The site file's network limit when the BMS wrote its own: an edit of the file since releases it."""
        self.watchdog_s = 0.0
        self.fallback_a = 0.0
        self._heard_s = clock()
        """The last limit write or heartbeat; until the first, the start (a silent BMS counts from start)."""
        self._changes = 0
        """Counts every change; a save writes the state of one count, and the disk never goes back to an older."""
        self._saved = 0
        self._urgent = False
        self._saved_at_s = clock()
        self._written = 0
        """The count on disk (guarded by ``_lock``: a worker thread's write and ``flush`` may overlap)."""
        self._lock = threading.Lock()
        self._restore(settings)

    # -- the source ------------------------------------------------------------------------------------------------
    def network_a(self) -> float:
        """The network limit in force: the BMS's, or the installer's when the BMS holds none."""
        return self.limit_a if self.limit_a is not None else self._settings.config.network_limit_a

    def fallback_in_force(self, now: float) -> float | None:
        """The fallback limit while the watchdog has expired, else None."""
        return self.fallback_a if bms_fallback_in_force(now, self.watchdog_s, self._heard_s) else None

    def deadline(self, now: float) -> float | None:
        """When the fallback comes into force if the BMS stays silent (clock time); None if it is off or in force."""
        deadline = bms_watchdog_deadline(self.watchdog_s, self._heard_s)
        return deadline if deadline is not None and deadline > now else None

    # -- what the BMS writes ---------------------------------------------------------------------------------------
    def set_limit(self, limit_a: float, now: float) -> str:
        """HR0: checked by the network limit's own rule; also a heartbeat. Raises ``CommandRejected``."""
        self._settings.check_network_limit(limit_a)
        self.limit_a = limit_a
        self._file_network_a = self._settings.config.network_limit_a
        self._heard_s = now
        self._changed(urgent=False)
        return f"network limit {limit_a:g} A (BMS)"

    def set_watchdog(self, timeout_s: float, now: float) -> str:
        """HR2; the watchdog counts from now (a BMS that turns it on is alive)."""
        if not (math.isfinite(timeout_s) and 0 <= timeout_s <= MAX_WATCHDOG_S):
            raise CommandRejected(tr("settings.watchdog_range", most=MAX_WATCHDOG_S), field="timeout_s")
        self.watchdog_s = timeout_s
        self._heard_s = now
        self._changed(urgent=True)
        return f"BMS watchdog {timeout_s:g} s" if timeout_s else "BMS watchdog off"

    def set_fallback(self, limit_a: float) -> str:
        """HR3: at most the installation limit."""
        check_amps(limit_a, tr("settings.limit.bms_fallback"), self._settings.config.installation_limit_a,
                   tr("settings.most.installation_limit"))
        self.fallback_a = limit_a
        self._changed(urgent=True)
        return f"BMS fallback limit {limit_a:g} A"

    def heartbeat(self, now: float) -> None:
        """HR4, or any write that includes HR0."""
        self._heard_s = now

    def release(self) -> float | None:
        """The installer set the network limit: the BMS's value gives way. Returns the value released, if any."""
        released, self.limit_a = self.limit_a, None
        if released is not None:
            self._changed(urgent=True)
        return released

    def _changed(self, *, urgent: bool) -> None:
        self._changes += 1
        self._urgent = self._urgent or urgent

    # -- saving ------------------------------------------------------------------------------------------------------
    @property
    def unsaved(self) -> bool:
        return self._store is not None and self._saved < self._changes

    def save_due(self, now: float) -> bool:
        """Whether to save now: a limit at most once per interval, anything else at once."""
        if not self.unsaved or not (self._urgent or now - self._saved_at_s >= PERSIST_INTERVAL_S):
            return False
        self._saved_at_s = now
        self._urgent = False
        return True

    async def save(self) -> None:
        """Write the state as it is now on a worker thread; a failure is logged and retried when next due."""
        count, document = self._changes, self._document()
        try:
            await asyncio.to_thread(self._write, count, document)
        except StoreError as exc:
            log.error("the BMS limit could not be saved (%s); retrying", exc)
            return
        self._saved = max(self._saved, count)

    def flush(self) -> None:
        """Write what is unsaved, here and now (at a clean stop)."""
        if not self.unsaved:
            return
        count = self._changes
        try:
            self._write(count, self._document())
        except StoreError as exc:
            log.error("the BMS limit could not be saved at stop (%s)", exc)
            return
        self._saved = count

    def _write(self, count: int, document: dict[str, Any]) -> None:
        assert self._store is not None
        with self._lock:
            if count <= self._written:  # a newer state is on disk already
                return
            self._store.save(document)
            self._written = count

    def _document(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "limit_a": self.limit_a, "network_limit_file_a": self._file_network_a,
                "watchdog_s": self.watchdog_s, "fallback_limit_a": self.fallback_a}

    def _restore(self, settings: SiteSettings) -> None:
        """The saved state; a value that no longer fits the site is dropped (logged), never applied. Without a
        file of its own yet, the watchdog comes from where versions up to 0.2 kept it (the settings), and is saved
        here at once."""
        document = self._store.load() if self._store is not None else None
        if document is None:
            self.watchdog_s, self.fallback_a = settings.legacy_bms_watchdog
            if self.watchdog_s or self.fallback_a:
                self._changed(urgent=True)
                self.flush()
            return
        if document.get("version") != FORMAT_VERSION:
            log.error("%s: unknown format version %r; the BMS limit and watchdog start off",
                      self._store.path if self._store else "", document.get("version"))
            return
        dropped = False
        try:
            self.set_watchdog(float(document.get("watchdog_s", 0.0)), self._heard_s)
            self.set_fallback(float(document.get("fallback_limit_a", 0.0)))
        except (CommandRejected, TypeError, ValueError) as exc:
            log.error("the saved BMS watchdog does not fit the site (%s); it starts off", exc)
            self.watchdog_s = self.fallback_a = 0.0
            dropped = True
        limit, file_then = document.get("limit_a"), document.get("network_limit_file_a")
        file_now = settings.config.network_limit_a
        if limit is not None and file_then != file_now:
            log.warning("site file changed network_limit_a from %r to %r: the file's value replaces the BMS's "
                        "limit %r", file_then, file_now, limit)
            dropped = True
        elif limit is not None:
            try:
                self.set_limit(float(limit), self._heard_s)
            except (CommandRejected, TypeError, ValueError) as exc:
                log.error("the saved BMS limit does not fit the site (%s); the network limit applies", exc)
                dropped = True
        self._saved = self._written = self._changes
        self._urgent = False
        if dropped:  # saved at the first step, so that a later edit back cannot revive what was dropped
            self._changed(urgent=True)

    def start(self, now: float) -> None:
        """The gateway starts: a BMS not heard from yet counts from now."""
        self._heard_s = now
