"""``powershare simulate``: simulated chargers (and a site meter) on real Modbus TCP and RTU, and simulated OCPP
1.6J chargers that connect to a gateway's endpoint, until stopped.

This is what docker-compose runs in place of real hardware, and what an installer can point ``probe`` or the
gateway at to rehearse a site. Any charger profile can be served; cars are plugged in at start, faults can be set
per unit at start (``--fault 3=silent``) to rehearse what the gateway does when a unit misbehaves. ``--ocpp URL``
adds OCPP chargers (``drivers.sim.ocpp_charger``) for a mixed fleet; they keep reconnecting until the gateway is
there.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ProfileRegistry
from drivers.sim.charger_sim import SimCharger
from drivers.sim.clock import ScaledClock
from drivers.sim.faults import Fault
from drivers.sim.meter_sim import MeteredCharger
from drivers.sim.ocpp_charger import SimOcppCharger
from drivers.sim.server import TcpListen
from drivers.sim.site import SimLine, SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from drivers.transport import SerialLine
from gateway.i18n.text import tr
from gateway.site.validation import read_password

DEFAULT_PROFILE = "powershare-sim"
DEFAULT_METER_UNIT = 100


def parse_units(text: str) -> list[int]:
    """``1-6`` or ``1,2,5-7`` -> sorted unit ids (1..247)."""
    units: set[int] = set()
    for item in text.split(","):
        first, _, last = item.strip().partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"unit list {text!r}: {item!r} is not a number or range like 1-6") from None
        if not 1 <= low <= high <= 247:
            raise ValueError(f"unit list {text!r}: {item!r} must be within 1..247, low to high")
        units.update(range(low, high + 1))
    return sorted(units)


def parse_cars(text: str, units: list[int]) -> dict[int, VehicleSpec]:
    """``all`` / ``none`` / ``UNITS[:LIMIT_A[:PHASES]],...`` -> the car plugged into each unit at start."""
    if text == "none":
        return {}
    if text == "all":
        return {u: VehicleSpec(f"car-{u}") for u in units}
    cars: dict[int, VehicleSpec] = {}
    for item in text.split(","):
        unit_text, *rest = item.strip().split(":")
        if len(rest) > 2:
            raise ValueError(f"car {item!r}: use UNITS[:LIMIT_A[:PHASES]], e.g. 1-3:32:3")
        try:
            limit = float(rest[0]) if rest else 32.0
            phases = int(rest[1]) if len(rest) > 1 else 3
        except ValueError:
            raise ValueError(f"car {item!r}: limit and phases must be numbers") from None
        for unit in parse_units(unit_text):
            cars[unit] = VehicleSpec(f"car-{unit}", onboard_limit_a=limit, phases=phases)
    return cars


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (port 0 lets the system choose)")
    return host.strip("[]"), int(port)


def parse_fault(text: str) -> tuple[int, Fault]:
    unit, sep, kind = text.partition("=")
    if not sep or not unit.strip().isdigit():
        raise ValueError(f"fault {text!r}: use UNIT=KIND, e.g. 3=silent, 4=late:2, 5=exception:6")
    return int(unit), Fault.parse(kind)


def parse_background(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"background {text!r}: three currents in A, e.g. 20,15,10") from None
    if len(values) != 3:
        raise ValueError(f"background {text!r}: three currents in A, e.g. 20,15,10")
    return (values[0], values[1], values[2])


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser(
        "simulate", help=tr("cli.simulate.help").render(lang),
        description="Serve simulated chargers (any charger profile) and optionally a site meter over Modbus TCP "
                    "and/or RTU, with simulated cars behind them, until SIGINT/SIGTERM.")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="charger profile (default %(default)s)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve over Modbus TCP, e.g. 0.0.0.0:5502")
    parser.add_argument("--units", default="1", help="unit ids on the TCP endpoint, e.g. 1-6 (default 1)")
    parser.add_argument("--rtu", metavar="DEVICE", help="serve on this serial line (RTU)")
    parser.add_argument("--rtu-units", help="unit ids on the serial line (default: same as --units)")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--cars", default="all",
                        help='cars plugged in at start: "all" (default), "none", or UNITS[:LIMIT_A[:PHASES]],... '
                             "e.g. 1-3:32:3,5:16:1")
    parser.add_argument("--meter", metavar="PROFILE", help="also serve a site meter with this profile")
    parser.add_argument("--meter-unit", type=int, default=DEFAULT_METER_UNIT)
    parser.add_argument("--background", default="0,0,0", help="the meter's other load per phase in A")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
    parser.add_argument("--fault", action="append", default=[], metavar="UNIT=KIND",
                        help="start a unit faulty: silent, late[:S], exception[:CODE], garbage, drop")
    parser.add_argument("--profiles-dir", action="append", default=[], type=Path, metavar="DIR")
    parser.add_argument("--status-every", type=float, default=0.0, metavar="S",
                        help="print every unit's state every S seconds (0: never)")
    ocpp = parser.add_argument_group("OCPP chargers", "simulated OCPP 1.6J charge points that connect to a gateway")
    ocpp.add_argument("--ocpp", metavar="URL", help="connect to URL/<identity>, e.g. ws://gateway:8180/ocpp")
    ocpp.add_argument("--ocpp-chargers", type=int, default=1, metavar="N", help="how many (default 1)")
    ocpp.add_argument("--ocpp-prefix", default="sim-ocpp-", help="identities PREFIX1..PREFIXN (default %(default)s)")
    secret = ocpp.add_mutually_exclusive_group()
    secret.add_argument("--ocpp-password", metavar="KEY", help="HTTP Basic password (AuthorizationKey)")
    secret.add_argument("--ocpp-password-file", type=Path, metavar="FILE", help="read the password from FILE")
    ocpp.add_argument("--ocpp-cars", default="all", help="cars at start, as --cars, numbered 1..N")
    ocpp.add_argument("--ocpp-cafile", type=Path, metavar="PEM", help="trust this certificate for wss://")
    ocpp.add_argument("--ocpp-failsafe-keys", action="store_true",
                      help="give them fail-safe configuration keys (PowershareSimFailsafeCurrent/-Timeout)")
    parser.set_defaults(func=run)


def build_site(args: argparse.Namespace) -> SimulatedSite:
    """The site the arguments describe; ``ValueError``/``KeyError``/``ProfileError`` for bad arguments."""
    if not args.tcp and not args.rtu and not args.ocpp:
        raise ValueError("give --tcp HOST:PORT, --rtu DEVICE and/or --ocpp URL")
    if not args.speed > 0:
        raise ValueError("--speed must be > 0")
    registry = ProfileRegistry.load(args.profiles_dir)
    profile = registry.charger(args.profile)
    site = SimulatedSite(ScaledClock(args.speed))
    lines: list[SimLine] = []
    if args.tcp:
        host, port = parse_endpoint(args.tcp)
        units = parse_units(args.units)
        line = site.add_line(TcpListen(host, port))
        site.add_chargers(line, profile, units, parse_cars(args.cars, units))
        lines.append(line)
    if args.rtu:
        units = parse_units(args.rtu_units or args.units)
        line = site.add_line(SerialLine(args.rtu, args.baud, args.parity, args.stopbits))
        site.add_chargers(line, profile, units, parse_cars(args.cars, units))
        lines.append(line)
    if args.meter:
        site.add_meter(lines[0], registry.meter(args.meter), args.meter_unit,
                       background_a=parse_background(args.background))
    return site


def build_ocpp(args: argparse.Namespace, site: SimulatedSite) -> list[SimOcppCharger]:
    """The OCPP chargers the arguments describe (none without ``--ocpp``); ``ValueError``/``OSError`` if bad.
    The site's meter, if any, sees them too: they draw from the same supply."""
    if not args.ocpp:
        return []
    if not args.ocpp.startswith(("ws://", "wss://")):
        raise ValueError(f"--ocpp {args.ocpp!r}: give a ws:// or wss:// URL")
    if not 1 <= args.ocpp_chargers <= 247:
        raise ValueError("--ocpp-chargers must be 1..247")
    password = args.ocpp_password
    if args.ocpp_password_file is not None:
        password = read_password(args.ocpp_password_file)
    context = None
    if args.ocpp.startswith("wss://"):
        context = ssl.create_default_context(cafile=str(args.ocpp_cafile) if args.ocpp_cafile else None)
    numbers = list(range(1, args.ocpp_chargers + 1))
    cars = parse_cars(args.ocpp_cars, numbers)
    sims = []
    for n in numbers:
        sim = SimOcppCharger(f"{args.ocpp_prefix}{n}", args.ocpp, site.clock, password=password,
                             ssl_context=context, failsafe_keys=args.ocpp_failsafe_keys)
        if n in cars:
            sim.plug(cars[n])
        sims.append(sim)
    for line in site.lines:
        for meter in line.meters.values():
            meter.chargers += [MeteredCharger(sim) for sim in sims]
    return sims


def _status(site: SimulatedSite, ocpp: Sequence[SimOcppCharger] = ()) -> str:
    rows = []
    for line in site.lines:
        for unit, charger in sorted(line.chargers.items()):
            currents = "/".join(f"{i:.1f}" for i in charger.phase_currents_a())
            rows.append(f"unit {unit}: {charger.state().value} setpoint {charger.setpoint_a:g} A "
                        f"pilot {charger.pilot_a:g} A drawing {currents} A"
                        f"{' FAILSAFE' if charger.in_failsafe else ''}")
        for unit, meter in sorted(line.meters.items()):
            rows.append(f"meter {unit}: " + "/".join(f"{i:.1f}" for i in meter.phase_currents_a()) + " A")
    for sim in ocpp:
        currents = "/".join(f"{i:.1f}" for i in sim.phase_currents_a())
        rows.append(f"{sim.id}: {sim.status()} {'online' if sim.connected else 'offline'} pilot {sim.pilot_a():g} A "
                    f"drawing {currents} A{' FAILSAFE' if sim.in_failsafe else ''}")
    return "\n".join(rows)


def _describe(line: SimLine, chargers: dict[int, SimCharger]) -> str:
    assert line.server is not None
    cars = [u for u, c in sorted(chargers.items()) if c.vehicle is not None]
    text = f"  {line.server.describe()}"
    if chargers:
        text += f" ({chargers[min(chargers)].profile.name}; cars on {','.join(map(str, cars)) or 'none'})"
    for unit, meter in sorted(line.meters.items()):
        background = "/".join(f"{i:g}" for i in meter.background_a)
        text += f"\n  meter {meter.profile.name} on unit {unit}, background {background} A"
    return text


async def serve(site: SimulatedSite, faults: list[tuple[int, Fault]], status_every: float,
                stop: asyncio.Event, ready: asyncio.Event | None = None, ocpp: Sequence[SimOcppCharger] = ()) -> None:
    """Start the site, report what it serves (then set ``ready``), run until ``stop`` is set, stop everything."""
    await site.start()
    started: list[SimOcppCharger] = []
    try:
        for sim in ocpp:
            await sim.start()
            started.append(sim)
        for unit, fault in faults:
            hit = [line for line in site.lines if line.server is not None and unit in line.server.models]
            if not hit:
                raise ValueError(f"--fault {unit}=...: no simulated unit {unit}")
            for line in hit:
                assert line.server is not None
                line.server.set_fault(unit, fault)
        speed = f" (simulated time x{site.clock.speed:g})" if isinstance(site.clock, ScaledClock) else ""
        print(f"powershare simulate: serving{speed}", flush=True)
        for line in site.lines:
            print(_describe(line, line.chargers), flush=True)
        for sim in ocpp:
            car = " with a car" if any(c.vehicle for c in sim.connectors.values()) else ""
            print(f"  ocpp {sim.url}{car}", flush=True)
        for unit, fault in faults:
            print(f"  unit {unit} starts with fault {fault.kind.value}", flush=True)
        print("running until SIGINT/SIGTERM", flush=True)
        if ready is not None:
            ready.set()
        while not stop.is_set():
            try:
                async with asyncio.timeout(status_every if status_every > 0 else None):
                    await stop.wait()
            except TimeoutError:
                print(_status(site, ocpp), flush=True)
    finally:
        for sim in started:
            await sim.stop()
        await site.stop()
    print("stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        site = build_site(args)
        ocpp = build_ocpp(args, site)
        faults = [parse_fault(text) for text in args.fault]
    except (ValueError, ProfileError, OSError) as exc:
        print(f"powershare simulate: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"powershare simulate: no such profile: {exc.args[0]}", file=sys.stderr)
        return 2

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve(site, faults, args.status_every, stop, ocpp=ocpp)
        except ValueError as exc:
            print(f"powershare simulate: {exc}", file=sys.stderr)
            return 2
        except (RuntimeError, OSError) as exc:
            print(f"powershare simulate: cannot serve: {exc}", file=sys.stderr)
            return 1
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    return asyncio.run(main())
