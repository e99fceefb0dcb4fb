"""``powershare probe``: read one live device with a profile and show what the gateway would see.

The installer's first check on site: is the right box on the right address, with the right line settings, and
does the profile match it? It only reads (no setpoint, no init writes), prints every value with its unit, the
identity and nameplate, every point that made no sense with the reason, and says what to check when nothing
answers.

Exit status: 0 all good; 1 the device did not answer or refused; 2 bad arguments; 3 it answered, but some points
made no sense (wrong profile or firmware?).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from drivers.bus import ModbusBus
from drivers.codec import InvalidReading
from drivers.errors import DeviceBusy, DeviceRejected, DeviceTimeout, DriverError, GatewayPathError, ProfileError
from drivers.modbus_charger import ModbusCharger
from drivers.modbus_meter import ModbusMeter
from drivers.model import PhaseValues
from drivers.profile import ChargerProfile, MeterProfile, ProfileRegistry
from drivers.transport import BusOptions, Endpoint, SerialLine, TcpEndpoint
from gateway.cli.simulate import parse_endpoint

EXIT_OK, EXIT_DEVICE, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3

_HINTS: dict[type[DriverError], str] = {
    DeviceTimeout: "no answer: check the unit id, wiring (A/B swapped?), termination, baud rate and parity",
    GatewayPathError: "the serial device server answered but the unit behind it did not: check the unit id "
                      "and the RS-485 side of the gateway",
    DeviceRejected: "the device refused the request: is this the right profile (and firmware) for it?",
    DeviceBusy: "the device is busy: try again in a few seconds",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "probe", help="read a live charger or meter with a profile and show what it reports",
        description="Read one device with a profile (read only) and print state, currents, voltages, power, "
                    "energy, nameplate, identity and any invalid points.")
    parser.add_argument("--profile", required=True, help="profile name (see the profiles directory)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="Modbus TCP")
    where.add_argument("--rtu-over-tcp", metavar="HOST:PORT", help="RTU frames through a serial device server")
    where.add_argument("--rtu", metavar="DEVICE", help="Modbus RTU on a serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--unit", type=int, help="unit id (default: the profile's default)")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S", help="per request (default 1 s)")
    parser.add_argument("--profiles-dir", action="append", default=[], type=Path, metavar="DIR")
    parser.set_defaults(func=run)


def endpoint_of(args: argparse.Namespace) -> Endpoint:
    if args.rtu:
        return SerialLine(args.rtu, args.baud, args.parity, args.stopbits)
    host, port = parse_endpoint(args.tcp or args.rtu_over_tcp)
    return TcpEndpoint(host, port, rtu_framing=bool(args.rtu_over_tcp))


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "invalid/absent" if value is None else f"{value:.{digits}f} {unit}"


def _phases(values: PhaseValues, unit: str, digits: int = 1) -> str:
    return "  ".join(f"L{i + 1} {_num(v, unit, digits)}" for i, v in enumerate(values))


def _row(label: str, text: str) -> str:
    return f"  {label:<12} {text}"


async def probe_charger(profile: ChargerProfile, bus: ModbusBus, unit: int, timeout_s: float) -> tuple[list[str],
                                                                                                       dict[str, str]]:
    driver = ModbusCharger(profile, bus, unit, timeout_s=timeout_s)
    reading = await driver.read()
    invalid = dict(driver.last_invalid)
    lines = [
        _row("state", reading.state.value if reading.state else "invalid"),
        _row("current", _phases(reading.current_a, "A")),
        _row("voltage", _phases(reading.voltage_v, "V", 0)),
        _row("power", _num(reading.power_w, "W", 0)),
        _row("energy", f"{_num(reading.energy_wh, 'Wh', 0)} (meter), "
                       f"session {_num(reading.session_energy_wh, 'Wh', 0)}"),
        _row("setpoint", f"{_num(reading.setpoint_a, 'A')} applied"
             + ("" if reading.enabled is None else f", charging {'enabled' if reading.enabled else 'disabled'}")),
    ]
    if reading.error_code is not None:
        lines.append(_row("error code", str(reading.error_code)))
    nameplate = f"{profile.nameplate_a:g} A (profile)"
    if profile.has("nameplate"):
        try:
            value = (await driver.read_points(["nameplate"]))["nameplate"]
        except DriverError as exc:
            nameplate += f", device: not readable ({exc})"
        else:
            if isinstance(value, InvalidReading):
                invalid["nameplate"] = str(value)
            nameplate += f", device reports {value if isinstance(value, InvalidReading) else f'{value:g} A'}"
    lines.append(_row("nameplate", nameplate))
    if any(profile.has(n) for n in profile.IDENTITY_ROLES):
        try:
            ident = await driver.read_identity()
        except DriverError as exc:
            lines.append(_row("identity", f"not readable ({exc})"))
        else:
            lines.append(_row("identity", f"serial {ident.serial or '?'}, firmware {ident.firmware or '?'}, "
                                          f"model {ident.model or '?'}"))
    caps = driver.capabilities
    lines.append(_row("abilities", f"{caps.min_current_a:g}..{caps.max_current_a:g} A in {caps.resolution_a:g} A "
                                   f"steps, {caps.phases} phase(s), fail-safe {'yes' if caps.has_failsafe else 'no'}"))
    return lines, invalid


async def probe_meter(profile: MeterProfile, bus: ModbusBus, unit: int, timeout_s: float) -> tuple[list[str],
                                                                                                   dict[str, str]]:
    driver = ModbusMeter(profile, bus, unit, timeout_s=timeout_s)
    reading = await driver.read()
    return [
        _row("current", _phases(reading.current_a, "A")),
        _row("voltage", _phases(reading.voltage_v, "V", 0)),
        _row("power", _num(reading.power_w, "W", 0)),
        _row("energy", f"{_num(reading.energy_import_wh, 'Wh', 0)} imported"),
    ], dict(driver.last_invalid)


async def probe(profile: ChargerProfile | MeterProfile, endpoint: Endpoint, unit: int, timeout_s: float,
                out: list[str]) -> int:
    """Append the report to ``out``; returns the exit status."""
    bus = ModbusBus(endpoint, BusOptions(connect_timeout_s=max(timeout_s, 1.0)))
    out.append(f"probe: {profile.name} ({profile.manufacturer} {', '.join(profile.models)}) unit {unit} on "
               f"{endpoint.describe()}")
    try:
        if isinstance(profile, ChargerProfile):
            lines, invalid = await probe_charger(profile, bus, unit, timeout_s)
        else:
            lines, invalid = await probe_meter(profile, bus, unit, timeout_s)
    except DriverError as exc:
        out.append(f"  FAILED: {exc}")
        hint = next((h for kind, h in _HINTS.items() if isinstance(exc, kind)), None)
        if hint:
            out.append(f"  hint: {hint}")
        return EXIT_DEVICE
    finally:
        stats = bus.stats(unit)
        await bus.close()
    out += lines
    latency = f", last round trip {stats.last_latency_s * 1000:.1f} ms" if stats.last_latency_s is not None else ""
    out.append(_row("link", f"{stats.successes} transactions ok, {stats.failures} failed{latency}"))
    if not invalid:
        out.append(_row("invalid", "none"))
        return EXIT_OK
    out.append(_row("invalid", f"{len(invalid)} point(s) made no sense (wrong profile or firmware?):"))
    out += [f"    {name}: {reason}" for name, reason in sorted(invalid.items())]
    return EXIT_INVALID


def run(args: argparse.Namespace) -> int:
    try:
        registry = ProfileRegistry.load(args.profiles_dir)
        profile = registry.get(args.profile)
        endpoint = endpoint_of(args)
    except (ValueError, ProfileError) as exc:
        print(f"powershare probe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyError:
        print(f"powershare probe: no profile named {args.profile!r}", file=sys.stderr)
        return EXIT_USAGE
    unit = args.unit if args.unit is not None else profile.default_unit_id
    if not 1 <= unit <= 255 or not args.timeout > 0:
        print("powershare probe: --unit must be 1..255 and --timeout > 0", file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "verbose", False):
        logging.getLogger("drivers").setLevel(logging.WARNING)  # the report says it all; no connect chatter
    out: list[str] = []
    status = asyncio.run(probe(profile, endpoint, unit, args.timeout, out))
    print("\n".join(out))
    return status
