"""``powershare run --config site.yaml``: the gateway in production, until SIGTERM or SIGINT.

It refuses to start on anything ``check-config`` refuses (every problem printed, exit 1), keeps the settings that
the BMS or an operator change in a state directory (atomically written, so a power cut or a SIGKILL loses
nothing), reads every charger before it commands any (a restart must not drop running sessions), and on SIGTERM
stops the faces, cancels and awaits every task and closes every bus, then exits 0. At start it raises its open-file
limit as far as allowed (``gateway.runtime.file_limits``) and makes the event loop log a repeating error (an accept
that fails for want of file handles) once a minute instead of every time.

What it runs is the site file with the settings changed at run time (``gateway.site.settings``): followers added
on the page, circuits, wiring, the meter, the BMS face and the central system. A restart asked for on the page
(``gateway.runtime.restart``) stops everything and serves again in the same process, the site file read anew.

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
from gateway.faces.ocpp.face import upstream_face
from gateway.faces.ocpp.security import SecuritySetupError
from gateway.faces.web.connections import MAX_CONNECTIONS as WEB_CONNECTIONS
from gateway.faces.web.face import web_face
from gateway.faces.web.server import WebStartError
from gateway.i18n.text import joined, localized, speaker, text_of, tr
from gateway.runtime.app import GatewayApp
from gateway.runtime.commands import CommandRejected
from gateway.runtime.file_limits import check_budget, face_cap, raise_open_file_limit
from gateway.runtime.log_limit import limit_loop_errors
from gateway.runtime.restart import Check, Restart
from gateway.site.config import ConfigError, SiteConfig
from gateway.site.store import remove_stale_temporaries
from gateway.site.validation import load_checked_site, load_running_site

log = logging.getLogger("gateway.run")

DEFAULT_STATE_DIR = Path("/var/lib/powershare")
LOCK_FILE = "powershare.lock"
EXIT_OK = 0
EXIT_FAILED = 1
RESTART = -1
"""``serve``'s answer when the page asked for a restart; never a process's exit code (``run`` serves again)."""


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
            return asyncio.run(serve_site_file(args.config.resolve(), site, registry, state_dir))
    except StateDirError as exc:
        print(f"powershare run: {localized(text_of(exc), args.lang)}", file=sys.stderr)
        return EXIT_FAILED


async def serve_site_file(path: Path, site: SiteConfig, registry: ProfileRegistry, state_dir: Path, *,
                          stop: asyncio.Event | None = None) -> int:
    """``serve`` the site file at ``path`` (absolute; ``site``, already checked), and serve it again, read and
    checked anew, each time the page asks for a restart (``gateway.runtime.restart``); until SIGINT/SIGTERM or
    ``stop``."""
    stop = stop if stop is not None else asyncio.Event()
    while True:
        code = await serve(site, registry, state_dir, base_dir=path.parent, stop=stop, site_file=path)
        if code != RESTART:
            return code
        try:
            site, notes = load_checked_site(path, registry)
        except ConfigError as exc:
            log.error(tr("cli.run.cannot_restart", error=text_of(exc)))
            return EXIT_FAILED
        for note in notes:
            log.info(tr("cli.run.note", note=note))
        log.info(tr("cli.run.restarting"))


def restart_check(path: Path, registry: ProfileRegistry, state_dir: Path) -> Check:
    """What the next start will read must start as the installer expects: the site file passes every rule, and the
    settings changed at run time still fit it (else the restart would drop them)."""

    def check() -> None:
        try:
            running = load_running_site(path, registry, state_dir)
        except ConfigError as exc:
            raise CommandRejected(tr("restart.site_file_broken", problems=text_of(exc))) from None
        if running.set_aside is not None:
            raise CommandRejected(tr("restart.settings_unused", why=running.set_aside))

    return check


async def serve(site: SiteConfig, registry: ProfileRegistry, state_dir: Path, *,
                base_dir: Path | None = None, stop: asyncio.Event | None = None, site_file: Path | None = None) -> int:
    """Run until SIGINT/SIGTERM (or until ``stop`` is set: tests stop it without signalling their own process);
    ``base_dir`` is the site file's directory (its relative paths start there). With ``site_file`` (the file
    ``site`` was read from) the page may ask for a restart: then the gateway stops and ``RESTART`` is returned."""
    stop = stop if stop is not None else asyncio.Event()
    restart = Restart(restart_check(site_file, registry, state_dir)) if site_file is not None else None
    loop = asyncio.get_running_loop()
    limit_loop_errors(loop)
    files = raise_open_file_limit()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    faces = [upstream_face(state_dir)]
    if site.web.enabled:
        faces.append(web_face(state_dir, restart=restart))
    if site.mqtt is not None:
        faces.append(mqtt_face(site.mqtt, base_dir if base_dir is not None else Path.cwd()))
    try:
        try:
            app = GatewayApp.build(site, registry, state_dir=state_dir, extra_faces=faces, base_dir=base_dir)
        except (SecuritySetupError, MqttSetupError) as exc:
            log.error(tr("cli.run.cannot_start", error=text_of(exc)))
            return EXIT_FAILED
        config = app.settings.config
        caps = (face_cap(BMS_CONNECTIONS) if config.bms is not None and config.bms.enabled else 0) \
            + (face_cap(WEB_CONNECTIONS) if config.web.enabled else 0)
        if (warning := check_budget(files, len(config.chargers), caps)) is not None:
            log.warning("%s", warning)
        try:
            await app.start()
        except (BmsStartError, WebStartError, OSError) as exc:
            log.error(tr("cli.run.cannot_start", error=text_of(exc)))
            return EXIT_FAILED
        endpoint = app.wiring.ocpp.endpoint
        running = [tr("cli.run.chargers", count=len(config.chargers))]
        if config.meter:
            running.append(tr("cli.run.with_meter"))
        if config.mqtt and config.mqtt.enabled:
            running.append(tr("cli.run.with_mqtt", broker=f"{config.mqtt.host}:{config.mqtt.port}"))
        if config.ocpp:
            running.append(tr("cli.run.with_ocpp", station=config.ocpp.charge_point_id))
        if app.wiring.ocpp.wanted:
            running.append(tr("cli.run.with_followers", url=endpoint.url("<chargePointId>")))
        log.info(tr("cli.run.running", site=config.name, what=joined(running, ", "), state_dir=str(state_dir)))
        restarting = await _until_stopped(stop, restart)
        log.info(tr("cli.run.stopping_for_restart") if restarting else tr("cli.run.stopping"))
        await app.stop()
        log.info(tr("cli.run.stopped"))
        return RESTART if restarting else EXIT_OK
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _until_stopped(stop: asyncio.Event, restart: Restart | None) -> bool:
    """Wait for ``stop`` or a restart; True for a restart (a stop asked for at the same time wins)."""
    waiters = [asyncio.create_task(stop.wait())]
    if restart is not None:
        waiters.append(asyncio.create_task(restart.requested.wait()))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return not stop.is_set()
