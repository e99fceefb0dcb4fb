"""``powershare check-config FILE [--state-dir DIR]``: validate a site file before it goes near a live installation.

It applies every rule the gateway applies at start-up (``gateway.site.validation.load_checked_site``: the site
file's schema, then the rules that need the device profiles and the files it names) and prints every problem at
once, or "ok" with a summary of what the gateway will control; in the command line's language (``args.lang``).

With ``--state-dir`` it checks the site as ``powershare run`` would start it: the site file with the settings
changed at run time in that directory (followers added on the page, circuits, wiring, meter, BMS, central system;
``gateway.site.validation.load_running_site``), and lists those changes. It only reads the directory. Settings the
gateway would not use (the site file was edited so that they no longer fit) are a warning, not an error: ``run``
starts then too, from the site file alone; exit 1 means exactly "``run`` refuses to start".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ChargerProfile, ProfileRegistry
from gateway.i18n.text import localized, speaker, tr
from gateway.runtime.ocpp_wiring import endpoint_config
from gateway.site.config import (
    ConfigError,
    OcppTransport,
    RtuTransport,
    SiteConfig,
    unit_limit_a,
)
from gateway.site.validation import load_checked_site, load_running_site


def register(subparsers: Any, lang: str) -> None:
    parser = subparsers.add_parser("check-config", help=tr("cli.check.help").render(lang),
                                   description=tr("cli.check.description").render(lang))
    parser.add_argument("file", type=Path, help=tr("cli.option.site_file").render(lang))
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help=tr("cli.option.profiles").render(lang))
    parser.add_argument("--state-dir", metavar="DIR", type=Path, help=tr("cli.check.option.state_dir").render(lang))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    lang: str = args.lang
    try:
        registry = ProfileRegistry.load(args.profiles)
    except ProfileError as exc:
        print(tr("cli.error", error=str(exc)).render(lang), file=sys.stderr)
        return 1
    try:
        if args.state_dir is None:
            site, notes = load_checked_site(path, registry)
        else:
            running = load_running_site(path, registry, args.state_dir)
            site, notes = running.site, running.notes
    except ConfigError as exc:
        print(exc.render(lang), file=sys.stderr)
        return 1
    if args.state_dir is None:
        print(tr("cli.check.ok", path=str(path)).render(lang))
        print(summary(site, registry, notes, lang))
        return 0
    say = speaker(lang)
    print(say("cli.check.ok_with_state", path=str(path), state_dir=str(args.state_dir)))
    print(summary(site, registry, notes, lang))
    print(say("cli.check.changed", count=len(running.state)) if running.state else say("cli.check.changed_nothing"))
    for line in running.state:
        print(f"  - {localized(line, lang)}")
    for warning in running.warnings:
        print(say("cli.check.warning", warning=warning), file=sys.stderr)
    return 0


def summary(site: SiteConfig, registry: ProfileRegistry, notes: list[str], lang: str = "en") -> str:
    say = speaker(lang)
    lines = [
        say("cli.check.site", name=site.name, phases=site.supply.phases, voltage=site.supply.voltage_v,
            installation=site.installation_limit_a, network=site.network_limit_a,
            sharing=tr("cli.check.enabled") if site.enabled else tr("cli.check.disabled")),
        say("cli.check.chargers", count=len(site.chargers)),
    ]
    for charger in site.chargers:
        transport = charger.transport
        wiring = say("cli.check.wiring", phases=charger.phases, rotation=charger.phase_rotation,
                     circuit=charger.circuit)
        if isinstance(transport, OcppTransport):
            lines.append("  " + say("cli.check.ocpp_charger", charger=charger.id, station=transport.charge_point_id,
                                    connector=transport.connector_id,
                                    limit=unit_limit_a(charger, transport.max_current_a), wiring=wiring))
            continue
        assert charger.profile is not None  # a validated Modbus charger has one
        profile: ChargerProfile = registry.charger(charger.profile)
        where = transport.device if isinstance(transport, RtuTransport) else f"{transport.host}:{transport.port}"
        lines.append("  " + say("cli.check.modbus_charger", charger=charger.id, profile=profile.name,
                                transport=transport.type, where=where, unit=transport.unit,
                                limit=unit_limit_a(charger, profile.nameplate_a), wiring=wiring))
    if any(isinstance(c.transport, OcppTransport) for c in site.chargers) or site.ocpp_endpoint is not None:
        endpoint = endpoint_config(site)
        scheme = "wss" if endpoint.tls_cert_file else "ws"
        lines.append(say("cli.check.ocpp_endpoint", url=f"{scheme}://{endpoint.host}:{endpoint.port}/<chargePointId>"))
    if site.meter is not None:
        meter = site.meter
        where = meter.transport.device if isinstance(meter.transport, RtuTransport) else \
            f"{meter.transport.host}:{meter.transport.port}"
        lines.append(say("cli.check.meter", profile=meter.profile, transport=meter.transport.type, where=where,
                         unit=meter.transport.unit, circuit=meter.circuit, limit=meter.limit_a, margin=meter.margin_a,
                         fallback=meter.fallback_limit_a, silent=meter.stale_after_s))
    lines.append(say("cli.check.circuits", count=len(site.circuits)))
    lines += ["  " + say("cli.check.circuit", circuit=c.id, limit=c.limit_a, parent=c.parent) for c in site.circuits]
    if notes:
        lines.append(say("cli.check.notes"))
        lines += [f"  - {localized(n, lang)}" for n in notes]
    return "\n".join(lines)
