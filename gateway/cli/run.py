"""``powershare run --config site.yaml``: the gateway in production, until SIGTERM or SIGINT.

It refuses to start on anything ``check-config`` refuses (every problem printed, exit 1), keeps the settings that
the BMS or an operator change in a state directory (atomically written, so a power cut or a SIGKILL loses
nothing), reads every charger before it commands any (a restart must not drop running sessions), and on SIGTERM
stops the faces, cancels and awaits every task and closes every bus, then exits 0. At start it raises its open-file
limit as far as allowed (``gateway.runtime.file_limits``) and makes the event loop log a repeating error (an accept
that fails for want of file handles) once a minute instead of every time.

The state directory is, in order: ``--state-dir``, ``$STATE_DIRECTORY`` (what systemd's ``StateDirectory=`` sets),
``/var/lib/powershare``. A lock file in it keeps a second gateway from leading the same site with the same state.

What it prints and its start and stop lines are in the command line's language at a terminal; the log (journald,
JSON) stays English (``gateway.cli.logs``).
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
from gateway.faces.mqtt.face import MqttSetupError
from gateway.faces.mqtt.wiring import mqtt_face
from gateway.faces.ocpp.face import ocpp_face
from gateway.faces.ocpp.security import SecuritySetupError
from gateway.faces.web.connections import MAX_CONNECTIONS as WEB_CONNECTIONS
from gateway.faces.web.face import web_face
from gateway.faces.web.server import WebStartError
from gateway.i18n.text import joined, localized, speaker, text_of, tr
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


def register(subparsers: Any, lang: str) -> None:
    say = speaker(lang)
    parser = subparsers.add_parser("run", help=say("cli.run.help"), description=say("cli.run.description"))
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help=say("cli.option.site_file"))
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help=say("cli.run.option.state_dir"))
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help=say("cli.option.profiles"))
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
        raise StateDirError(tr("cli.run.state_dir_unusable", path=str(path), error=exc.strerror or str(exc))) \
            from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirError(tr("cli.run.state_dir_in_use", path=str(path))) from None
        remove_stale_temporaries(path)
        yield path


def run(args: argparse.Namespace) -> int:
    try:
        registry = ProfileRegistry.load(args.profiles)
        site, notes = load_checked_site(args.config, registry)
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as exc:
        print(exc.render(args.lang), file=sys.stderr)
        return EXIT_FAILED
    try:
        with locked_state_dir(state_dir_of(args.state_dir)) as state_dir:
            for note in notes:
                log.info(tr("cli.run.note", note=note))
            return asyncio.run(serve(site, registry, state_dir, base_dir=args.config.resolve().parent))
    except StateDirError as exc:
        print(f"powershare run: {localized(text_of(exc), args.lang)}", file=sys.stderr)
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
    if site.mqtt is not None:
        faces.append(mqtt_face(site.mqtt, base_dir if base_dir is not None else Path.cwd()))
    try:
        try:
            app = GatewayApp.build(site, registry, state_dir=state_dir, extra_faces=faces, base_dir=base_dir)
        except (SecuritySetupError, MqttSetupError) as exc:
            log.error(tr("cli.run.cannot_start", error=text_of(exc)))
            return EXIT_FAILED
        try:
            await app.start()
        except (BmsStartError, WebStartError, OSError) as exc:
            log.error(tr("cli.run.cannot_start", error=text_of(exc)))
            return EXIT_FAILED
        endpoint = app.wiring.ocpp.endpoint
        running = [tr("cli.run.chargers", count=len(site.chargers))]
        if site.meter:
            running.append(tr("cli.run.with_meter"))
        if site.mqtt and site.mqtt.enabled:
            running.append(tr("cli.run.with_mqtt", broker=f"{site.mqtt.host}:{site.mqtt.port}"))
        if site.ocpp:
            running.append(tr("cli.run.with_ocpp", station=site.ocpp.charge_point_id))
        if app.wiring.ocpp.wanted:
            running.append(tr("cli.run.with_followers", url=endpoint.url("<chargePointId>")))
        log.info(tr("cli.run.running", site=site.name, what=joined(running, ", "), state_dir=str(state_dir)))
        await stop.wait()
        log.info(tr("cli.run.stopping"))
        await app.stop()
        log.info(tr("cli.run.stopped"))
        return EXIT_OK
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
