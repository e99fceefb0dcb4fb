"""``powershare csms``: run the small OCPP 1.6J central system until interrupted (SIGINT or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.i18n.text import tr
from gateway.sim.csms import CentralSystem, ScriptStep, load_script
from gateway.site.config import ConfigError


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser(
        "csms", help=tr("cli.csms.help").render(lang),
        description="A small OCPP 1.6J central system: accepts charge points at ws://HOST:PORT/<chargePointId>, "
                    "prints one line per message, answers correctly, and can send charging profiles and other "
                    "calls after each BootNotification.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=9000, help="TCP port (default 9000; 0 picks a free one)")
    parser.add_argument("--password", help="require HTTP Basic auth: user = charge point id, this password")
    parser.add_argument("--allow", action="append", metavar="ID",
                        help="accept only this charge point id (repeatable); others get HTTP 404")
    parser.add_argument("--heartbeat", type=int, default=300, metavar="S",
                        help="heartbeat interval sent in BootNotification.conf (default 300 s)")
    parser.add_argument("--cap-site", type=float, metavar="A",
                        help="after each boot, send a ChargePointMaxProfile (connector 0) of A amps per phase")
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="YAML list of timed calls: - {at: SECONDS_AFTER_BOOT, action: NAME, payload: {...}}")
    parser.add_argument("--first-transaction-id", type=int, default=1, metavar="N",
                        help="transaction ids handed out start here and increase (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    script: tuple[ScriptStep, ...] = ()
    if args.script is not None:
        try:
            script = load_script(args.script)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    if not getattr(args, "verbose", False):
        logging.getLogger("ocpp").setLevel(logging.WARNING)  # the library logs every frame at INFO
    try:
        csms = CentralSystem(host=args.host, port=args.port, password=args.password, allowed=args.allow,
                             heartbeat_interval=args.heartbeat, cap_site_a=args.cap_site, script=script,
                             first_transaction_id=args.first_transaction_id,
                             printer=lambda line: print(line, flush=True))
    except ValueError as exc:
        print(f"csms: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(csms))
    except OSError as exc:
        print(f"csms: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(csms: CentralSystem) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with csms:
        print(f"OCPP 1.6J central system listening on ws://{csms.host}:{csms.port}/<chargePointId>", flush=True)
        await stop.wait()
    print("central system stopped", flush=True)
