"""``powershare probe``: read one live device with a profile and show what the gateway would see.

The installer's first check on site: is the right box on the right address, with the right line settings, and
does the profile match it? It only reads (no setpoint, no init writes), prints every value with its unit, the
identity and nameplate, every point that made no sense with the reason, and says what to check when nothing
answers.

Exit status: 0 all good; 1 the device did not answer or refused; 2 bad arguments; 3 it answered, but some points
made no sense (wrong profile or firmware?). The report is in the command line's language; the device's own words
(an invalid point's reason, a driver's error) stay as the driver gives them.
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
from gateway.i18n.catalog import DEFAULT_LANGUAGE
from gateway.i18n.text import fixed, msgid, speaker, tr

EXIT_OK, EXIT_DEVICE, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3

_HINTS: dict[type[DriverError], str] = {
    DeviceTimeout: msgid("cli.probe.hint.timeout"),
    GatewayPathError: msgid("cli.probe.hint.gateway_path"),
    DeviceRejected: msgid("cli.probe.hint.rejected"),
    DeviceBusy: msgid("cli.probe.hint.busy"),
}
"""What to check, by what went wrong (message ids)."""


def register(subparsers: Any, lang: str) -> None:
    say = speaker(lang)
    parser = subparsers.add_parser("probe", help=say("cli.probe.help"), description=say("cli.probe.description"))
    parser.add_argument("--profile", required=True, help=say("cli.probe.option.profile"))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="Modbus TCP")
    where.add_argument("--rtu-over-tcp", metavar="HOST:PORT", help=say("cli.probe.option.rtu_over_tcp"))
    where.add_argument("--rtu", metavar="DEVICE", help=say("cli.probe.option.rtu"))
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--unit", type=int, help=say("cli.probe.option.unit"))
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S", help=say("cli.probe.option.timeout"))
    parser.add_argument("--profiles-dir", action="append", default=[], type=Path, metavar="DIR")
    parser.set_defaults(func=run)


def endpoint_of(args: argparse.Namespace) -> Endpoint:
    if args.rtu:
        return SerialLine(args.rtu, args.baud, args.parity, args.stopbits)
    host, port = parse_endpoint(args.tcp or args.rtu_over_tcp)
    return TcpEndpoint(host, port, rtu_framing=bool(args.rtu_over_tcp))


class _Report:
    """The report's words and numbers in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.say = speaker(lang)

    def num(self, value: float | None, unit: str, digits: int = 1) -> str:
        say = self.say
        return say("cli.probe.absent") if value is None else f"{fixed(value, digits, self.lang)} {unit}"

    def phases(self, values: PhaseValues, unit: str, digits: int = 1) -> str:
        return "  ".join(f"L{i + 1} {self.num(v, unit, digits)}" for i, v in enumerate(values))

    @staticmethod
    def row(label: str, text: str) -> str:
        return f"  {label:<12} {text}"


async def probe_charger(profile: ChargerProfile, bus: ModbusBus, unit: int, timeout_s: float,
                        lang: str = DEFAULT_LANGUAGE) -> tuple[list[str], dict[str, str]]:
    driver = ModbusCharger(profile, bus, unit, timeout_s=timeout_s)
    reading = await driver.read()
    invalid = dict(driver.last_invalid)
    r = _Report(lang)
    say = r.say
    applied = r.num(reading.setpoint_a, "A")
    if reading.enabled is None:
        setpoint = say("cli.probe.applied", setpoint=applied)
    elif reading.enabled:
        setpoint = say("cli.probe.applied_enabled", setpoint=applied)
    else:
        setpoint = say("cli.probe.applied_disabled", setpoint=applied)
    lines = [
        r.row(say("cli.probe.row.state"), reading.state.value if reading.state else say("cli.probe.invalid_value")),
        r.row(say("cli.probe.row.current"), r.phases(reading.current_a, "A")),
        r.row(say("cli.probe.row.voltage"), r.phases(reading.voltage_v, "V", 0)),
        r.row(say("cli.probe.row.power"), r.num(reading.power_w, "W", 0)),
        r.row(say("cli.probe.row.energy"), say("cli.probe.energy", meter=r.num(reading.energy_wh, "Wh", 0),
                                          session=r.num(reading.session_energy_wh, "Wh", 0))),
        r.row(say("cli.probe.row.setpoint"), setpoint),
    ]
    if reading.error_code is not None:
        lines.append(r.row(say("cli.probe.row.error_code"), str(reading.error_code)))
    nameplate = say("cli.probe.nameplate", amps=profile.nameplate_a)
    if profile.has("nameplate"):
        try:
            value = (await driver.read_points(["nameplate"]))["nameplate"]
        except DriverError as exc:
            nameplate = say("cli.probe.nameplate_unreadable", nameplate=nameplate, error=str(exc))
        else:
            if isinstance(value, InvalidReading):
                invalid["nameplate"] = str(value)
                nameplate = say("cli.probe.nameplate_device", nameplate=nameplate, device=str(value))
            else:
                nameplate = say("cli.probe.nameplate_device", nameplate=nameplate, device=tr("cli.probe.amps",
                                                                                              amps=value))
    lines.append(r.row(say("cli.probe.row.nameplate"), nameplate))
    if any(profile.has(n) for n in profile.IDENTITY_ROLES):
        try:
            ident = await driver.read_identity()
        except DriverError as exc:
            lines.append(r.row(say("cli.probe.row.identity"), say("cli.probe.unreadable", error=str(exc))))
        else:
            lines.append(r.row(say("cli.probe.row.identity"), say(
                "cli.probe.identity", serial=ident.serial or "?", firmware=ident.firmware or "?",
                model=ident.model or "?")))
    caps = driver.capabilities
    lines.append(r.row(say("cli.probe.row.abilities"), say(
        "cli.probe.abilities", low=caps.min_current_a, high=caps.max_current_a, step=caps.resolution_a,
        phases=caps.phases, failsafe=say("cli.probe.yes") if caps.has_failsafe else say("cli.probe.no"))))
    return lines, invalid


async def probe_meter(profile: MeterProfile, bus: ModbusBus, unit: int, timeout_s: float,
                      lang: str = DEFAULT_LANGUAGE) -> tuple[list[str], dict[str, str]]:
    driver = ModbusMeter(profile, bus, unit, timeout_s=timeout_s)
    reading = await driver.read()
    r = _Report(lang)
    say = r.say
    return [
        r.row(say("cli.probe.row.current"), r.phases(reading.current_a, "A")),
        r.row(say("cli.probe.row.voltage"), r.phases(reading.voltage_v, "V", 0)),
        r.row(say("cli.probe.row.power"), r.num(reading.power_w, "W", 0)),
        r.row(say("cli.probe.row.energy"), say("cli.probe.imported", energy=r.num(reading.energy_import_wh, "Wh", 0))),
    ], dict(driver.last_invalid)


async def probe(profile: ChargerProfile | MeterProfile, endpoint: Endpoint, unit: int, timeout_s: float,
                out: list[str], lang: str = DEFAULT_LANGUAGE) -> int:
    """Append the report to ``out``; returns the exit status."""
    r = _Report(lang)
    say = r.say
    bus = ModbusBus(endpoint, BusOptions(connect_timeout_s=max(timeout_s, 1.0)))
    out.append(say("cli.probe.heading", profile=profile.name, manufacturer=profile.manufacturer,
                   models=", ".join(profile.models), unit=unit, endpoint=endpoint.describe()))
    try:
        if isinstance(profile, ChargerProfile):
            lines, invalid = await probe_charger(profile, bus, unit, timeout_s, lang)
        else:
            lines, invalid = await probe_meter(profile, bus, unit, timeout_s, lang)
    except DriverError as exc:
        out.append("  " + say("cli.probe.failed", error=str(exc)))
        hint = next((h for kind, h in _HINTS.items() if isinstance(exc, kind)), None)
        if hint:
            out.append("  " + say("cli.probe.hint", hint=tr(hint)))
        return EXIT_DEVICE
    finally:
        stats = bus.stats(unit)
        await bus.close()
    out += lines
    if stats.last_latency_s is not None:
        link = say("cli.probe.link_latency", ok=stats.successes, failed=stats.failures,
                   ms=fixed(stats.last_latency_s * 1000, 1, lang))
    else:
        link = say("cli.probe.link", ok=stats.successes, failed=stats.failures)
    out.append(r.row(say("cli.probe.row.link"), link))
    if not invalid:
        out.append(r.row(say("cli.probe.row.invalid"), say("cli.probe.none")))
        return EXIT_OK
    out.append(r.row(say("cli.probe.row.invalid"), say("cli.probe.invalid_points", count=len(invalid))))
    out += [f"    {name}: {reason}" for name, reason in sorted(invalid.items())]
    return EXIT_INVALID


def run(args: argparse.Namespace) -> int:
    say = speaker(args.lang)
    try:
        registry = ProfileRegistry.load(args.profiles_dir)
        profile = registry.get(args.profile)
        endpoint = endpoint_of(args)
    except (ValueError, ProfileError) as exc:
        print(f"powershare probe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyError:
        print(say("cli.probe.unknown_profile", profile=args.profile), file=sys.stderr)
        return EXIT_USAGE
    unit = args.unit if args.unit is not None else profile.default_unit_id
    if not 1 <= unit <= 255 or not args.timeout > 0:
        print(say("cli.probe.bad_arguments"), file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "verbose", False):
        logging.getLogger("drivers").setLevel(logging.WARNING)  # the report says it all; no connect chatter
    out: list[str] = []
    status = asyncio.run(probe(profile, endpoint, unit, args.timeout, out, args.lang))
    print("\n".join(out))
    return status
