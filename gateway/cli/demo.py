"""``powershare demo``: the README's first command. No arguments needed; see ``gateway.demo.site`` for what it runs.

In a terminal it shows a live table; anywhere else (CI, a pipe) one compact line per second, so ``powershare demo
--duration 20 --summary-json out.json`` works with no terminal and no standard input. The live table, the messages
and the closing verdict are in the command line's language; the compact lines stay English (``gateway.demo.view``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from gateway.demo.site import Demo, DemoOptions, Frame
from gateway.demo.view import LinePrinter, render
from gateway.faces.bms.server import BmsStartError
from gateway.faces.mqtt.wiring import config_from_url, mqtt_face
from gateway.faces.ocpp.face import ocpp_face
from gateway.faces.web.face import web_face
from gateway.faces.web.server import WebServer, WebStartError
from gateway.i18n.text import Say, fixed, localized, speaker, text_of, tr
from gateway.runtime.app import FaceFactory
from gateway.site.config import ConfigError, OcppConfig, WebConfig
from gateway.site.store import StoreError, write_atomically


def register(subparsers: Any, lang: str) -> None:
    say = speaker(lang)
    parser = subparsers.add_parser("demo", help=say("cli.demo.help"), description=say("cli.demo.description"))
    parser.add_argument("--chargers", type=int, default=6, metavar="N", help=say("cli.demo.option.chargers"))
    parser.add_argument("--ocpp-chargers", type=int, default=0, metavar="N",
                        help=say("cli.demo.option.ocpp_chargers"))
    parser.add_argument("--limit", type=float, default=48.0, metavar="A", help=say("cli.demo.option.limit"))
    parser.add_argument("--duration", type=float, metavar="S", help=say("cli.demo.option.duration"))
    parser.add_argument("--speed", type=float, default=60.0, metavar="X", help=say("cli.demo.option.speed"))
    parser.add_argument("--seed", type=int, default=1, help=say("cli.demo.option.seed"))
    parser.add_argument("--bms-port", type=int, default=5020, metavar="PORT", help=say("cli.demo.option.bms_port"))
    parser.add_argument("--web-port", type=int, default=8080, metavar="PORT", help=say("cli.demo.option.web_port"))
    parser.add_argument("--summary-json", type=Path, metavar="FILE", help=say("cli.demo.option.summary_json"))
    parser.add_argument("--ocpp-url", metavar="URL", help=say("cli.demo.option.ocpp_url"))
    parser.add_argument("--mqtt", metavar="URL", help=say("cli.demo.option.mqtt"))
    parser.add_argument("--ocpp-id", default="powershare-demo", metavar="ID", help=say("cli.demo.option.ocpp_id"))
    parser.set_defaults(func=run)


def ocpp_options(url: str | None, charge_point_id: str) -> OcppConfig | None:
    """The ``ocpp:`` section for ``--ocpp-url``: security profile 0, free vend; ``ValueError`` if refused."""
    if url is None:
        return None
    try:
        return OcppConfig(url=url, charge_point_id=charge_point_id)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'ocpp'}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems.replace("url:", "--ocpp-url:").replace("charge_point_id:", "--ocpp-id:")) \
            from None


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(chargers=args.chargers, limit_a=args.limit, duration_s=args.duration, speed=args.speed,
                          seed=args.seed, bms_port=args.bms_port, ocpp_chargers=args.ocpp_chargers)
    verbose = bool(getattr(args, "verbose", False))
    for name in ("gateway", "drivers", "uvicorn"):  # the table shows the events; a log would tear the screen
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="powershare-demo-") as state:
        try:
            ocpp = ocpp_options(args.ocpp_url, args.ocpp_id)
            faces = [ocpp_face(ocpp, Path(state))] if ocpp is not None else []
            if args.web_port >= 0:
                faces.append(demo_web_face(args.web_port, Path(state), args.lang))
            if args.mqtt is not None:
                faces.append(mqtt_face(config_from_url(args.mqtt), Path.cwd()))
            demo = Demo(options, extra_faces=faces)
        except ConfigError as exc:
            print(f"powershare demo: {exc.render(args.lang)}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"powershare demo: {localized(text_of(exc), args.lang)}", file=sys.stderr)
            return 2
        return _show(demo, args)


def demo_web_face(port: int, state_dir: Path, lang: str = "en") -> FaceFactory:
    """The installer's page on loopback with a password made up for this run and printed (the demo only: a real
    gateway has none until the installer sets one with the setup code)."""
    password = f"demo-{secrets.token_hex(4)}"

    def announce(server: WebServer) -> None:
        print(tr("cli.demo.web_page", url=server.url, password=password).render(lang), flush=True)

    if not 0 <= port <= 65535:
        raise ValueError(tr("cli.demo.bad_web_port"))
    return web_face(state_dir, config=WebConfig(host="127.0.0.1", port=port), password=password, announce=announce)


def _show(demo: Demo, args: argparse.Namespace) -> int:
    console = Console()
    say = speaker(args.lang)
    try:
        if console.is_terminal:
            with Live(console=console, refresh_per_second=4, auto_refresh=True) as live:
                summary = asyncio.run(_run(demo, lambda frame: live.update(render(frame, args.lang)), 0.5))
        else:
            printer = LinePrinter(lambda line: print(line, flush=True))
            summary = asyncio.run(_run(demo, printer, 1.0))
    except BmsStartError as exc:
        print(say("cli.demo.port_taken", error=str(exc), option="--bms-port"), file=sys.stderr)
        return 1
    except WebStartError as exc:
        print(say("cli.demo.port_taken", error=str(exc), option="--web-port"), file=sys.stderr)
        return 1
    print(_verdict(summary, say, args.lang), flush=True)
    if args.summary_json is not None:
        try:
            write_atomically(args.summary_json, json.dumps(summary, indent=2).encode("utf-8"))
        except StoreError as exc:
            print(f"powershare demo: {exc}", file=sys.stderr)
            return 1
    return 0


async def _run(demo: Demo, show: Callable[[Frame], None], every_s: float) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        result: dict[str, Any] = await demo.run(stop, show, every_s)
        return result
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _verdict(summary: dict[str, Any], say: Say, lang: str) -> str:
    peak = summary["peak_a"]
    energy = sum(unit["energy_wh"] for unit in summary["units"].values())
    fleet = say("cli.demo.fleet", chargers=summary["chargers"])
    if summary.get("ocpp_chargers"):
        fleet = say("cli.demo.mixed_fleet", chargers=summary["chargers"], ocpp=summary["ocpp_chargers"])
    return say("cli.demo.verdict", seconds=round(summary["duration_s"]), fleet=fleet, kwh=fixed(energy / 1000, 2, lang),
               peak="/".join(fixed(peak[p], 1, lang) for p in ("L1", "L2", "L3")), limit=summary["limit_a"],
               lowest=summary["lowest_limit_a"], amp_seconds=summary["over_limit_amp_seconds"])

