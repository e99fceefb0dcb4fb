"""A restart asked for from the page: what applies a saved BMS, central-system or meter-device change.

The restart happens inside the process (``powershare run`` serves again): the faces stop taking commands, the
control task and the pollers end, the buses close, then the site file and the state directory are read and checked
again and everything starts anew, with the same state-directory lock, under the same systemd unit and PID. It does
not depend on a service manager bringing the process back, and chargers see what they see at any restart: no poll
for a few seconds (far less than their communication timeout), then a gateway that reads every charger before it
commands any.

Before it stops anything, the restart checks what the next start will read (the site file and the settings, as
``powershare check-config --state-dir`` does): a site file edited into something ``run`` refuses, or settings the
edited file no longer fits, refuse the restart and leave the gateway running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.i18n.text import tr
from gateway.runtime.commands import CommandRejected

log = logging.getLogger(__name__)

Check = Callable[[], None]
"""Raises ``CommandRejected`` saying why the next start would not be the one the installer expects."""


class Restart:
    """Called with who asks (``"web installer@10.0.0.7"``); ``requested`` is set once the check passed."""

    def __init__(self, check: Check) -> None:
        self._check = check
        self.requested = asyncio.Event()
        self.requested_by: str | None = None

    def __call__(self, origin: str) -> None:
        if self.requested.is_set():
            raise CommandRejected(tr("restart.already"))
        self._check()
        self.requested_by = origin
        log.warning("restart asked for by %s", origin)
        self.requested.set()
