"""``powershare run --config site.yaml``: the gateway in production, until SIGTERM or SIGINT.

It refuses to start on anything ``check-config`` refuses (every problem printed, exit 1), keeps the settings that
the BMS or an operator change in a state directory (atomically written, so a power cut or a SIGKILL loses
nothing), reads every charger before it commands any (a restart must not drop running sessions), and on SIGTERM
stops the faces, cancels and awaits every task and closes every bus, then exits 0. At start it raises its open-file
limit as far as allowed (``gateway.runtime.file_limits``) and makes the event loop log a repeating error (an accept
that fails for want of file handles) once a minute instead of every time.

The state directory is, in order: ``--state-dir``, ``$STATE_DIRECTORY`` (what systemd's ``StateDirectory=`` sets),
``/var/lib/powershare``. A lock file in it keeps a second gateway from leading the same site with the same state.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ProfileRegistry
from gateway.errors import StartError
from gateway.faces.bms.server import MAX_CONNECTIONS as BMS_CONNECTIONS
from gateway.faces.bms.server import BmsStartError
from gateway.faces.ocpp.face import ocpp_face
from gateway.faces.ocpp.security import SecuritySetupError
from gateway.faces.web.connections import MAX_CONNECTIONS as WEB_CONNECTIONS
from gateway.faces.web.face import web_face
from gateway.faces.web.server import WebStartError
from gateway.runtime.app import GatewayApp
from gateway.runtime.file_limits import check_budget, face_cap, raise_open_file_limit
from gateway.runtime.log_limit import limit_loop_errors
from gateway.site.config import ConfigError, SiteConfig
from gateway.site.store import remove_stale_temporaries
from gateway.site.validation import load_checked_site

log = logging.getLogger("gateway.run")

DEFAULT_STATE_DIR = Path("/var/lib/powershare")
LOCK_FILE = "powershare.lock"
EXIT_OK = 0
EXIT_FAILED = 1


class StateDirError(StartError):
    """The state directory cannot be used; the message says which and why."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the gateway for a site file until SIGTERM/SIGINT",
        description="Lead the chargers of a site file: poll them, share the current, serve the BMS face and "
                    "the installer's web page. "
                    "Settings changed at run time are kept in the state directory.")
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="the site file (YAML)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="where settings persist (default: $STATE_DIRECTORY, else /var/lib/powershare)")
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help="also load site-specific profiles from DIR (repeatable)")
    parser.set_defaults(func=run)


def state_dir_of(given: Path | None) -> Path:
    if given is not None:
        return given
    from_systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_systemd) if from_systemd else DEFAULT_STATE_DIR


@contextmanager
def locked_state_dir(path: Path) -> Iterator[Path]:
    """Create ``path`` if needed, check it is writable and hold its lock while the gateway runs; with the lock held,
    remove what interrupted writes left behind (``gateway.site.store.remove_stale_temporaries``)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = (path / LOCK_FILE).open("a+")
    except OSError as exc:
        raise StateDirError(f"state directory {path}: {exc.strerror or exc} (choose another with --state-dir)") \
            from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirError(f"state directory {path} is in use by another powershare gateway") from None
        remove_stale_temporaries(path)
        yield path


def run(args: argparse.Namespace) -> int:
    try:
        registry = ProfileRegistry.load(args.profiles)
        site, notes = load_checked_site(args.config, registry)
    except (ProfileError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    try:
        with locked_state_dir(state_dir_of(args.state_dir)) as state_dir:
            for note in notes:
                log.info("note: %s", note)
            return asyncio.run(serve(site, registry, state_dir, base_dir=args.config.resolve().parent))
    except StateDirError as exc:
        print(f"powershare run: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def serve(site: SiteConfig, registry: ProfileRegistry, state_dir: Path, *,
                base_dir: Path | None = None, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or until ``stop`` is set: tests stop it without signalling their own process);
    ``base_dir`` is the site file's directory (its relative paths start there)."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    limit_loop_errors(loop)
    files = raise_open_file_limit()
    caps = (face_cap(BMS_CONNECTIONS) if site.bms is not None and site.bms.enabled else 0) \
        + (face_cap(WEB_CONNECTIONS) if site.web.enabled else 0)
    if (warning := check_budget(files, len(site.chargers), caps)) is not None:
        log.warning("%s", warning)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    faces = [ocpp_face(site.ocpp, state_dir)] if site.ocpp is not None else []
    if site.web.enabled:
        faces.append(web_face(state_dir))
    try:
        try:
            app = GatewayApp.build(site, registry, state_dir=state_dir, extra_faces=faces, base_dir=base_dir)
        except SecuritySetupError as exc:
            log.error("cannot start: %s", exc)
            return EXIT_FAILED
        try:
            await app.start()
        except (BmsStartError, WebStartError, OSError) as exc:
            log.error("cannot start: %s", exc)
            return EXIT_FAILED
        endpoint = app.wiring.ocpp.endpoint
        log.info("running site %r: %d chargers%s%s%s, settings in %s", site.name, len(site.chargers),
                 ", a site meter" if site.meter else "",
                 f", OCPP charge point {site.ocpp.charge_point_id}" if site.ocpp else "",
                 f", OCPP followers at {endpoint.url('<chargePointId>')}" if app.wiring.ocpp.wanted else "",
                 state_dir)
        await stop.wait()
        log.info("stopping")
        await app.stop()
        log.info("stopped")
        return EXIT_OK
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
