"""File handles: take what the system allows, and keep the faces' share of them bounded.

Every socket is a file handle. When they run out, nothing can be accepted or opened anywhere in the process: the
installer's page, a new BMS client, a charger reconnecting, the state files. So at start the gateway raises its soft
limit to the hard one (systemd's ``LimitNOFILE=`` sets both), and each face that accepts connections from the
network caps them at a share of what is left after a reserve for the gateway's own needs (chargers, buses, state
files, logs). A face's default cap applies whenever the limit is comfortable; only a small limit shrinks it.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

RESERVE = 128
"""Handles kept for the gateway itself beyond one per charger: event loop, logs, state files, serial lines."""
FACE_SHARE = 8
"""Each listening face may hold at most 1/FACE_SHARE of what the reserve leaves, and as many again in its listen
backlog (asyncio accepts a backlog's worth before the face sees them): BMS, web, OCPP followers, spare."""
TARGET = 65536
"""The soft limit asked for when the hard limit is unlimited."""


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """Raise the soft limit to the hard one (or ``TARGET`` if unlimited); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    return soft


def face_cap(default: int, limit: int | None = None) -> int:
    """The connection cap of one face: ``default``, unless the open-file limit is too small for it."""
    spare = (open_file_limit() if limit is None else limit) - RESERVE
    return max(1, min(default, spare // FACE_SHARE))


def check_budget(limit: int, chargers: int, face_caps: int) -> str | None:
    """A warning when ``limit`` cannot hold the chargers, the faces' caps and the reserve together; else None."""
    needed = RESERVE + chargers + face_caps
    if limit >= needed:
        return None
    return (f"the open-file limit is {limit}, below the {needed} this site may need ({chargers} chargers, "
            f"{face_caps} face connections, {RESERVE} reserved): raise LimitNOFILE (see docs/deployment.md)")
