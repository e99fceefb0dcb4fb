"""``powershare check-config FILE [--state-dir DIR]``: validate a site file before it goes near a live installation.

It applies every rule the gateway applies at start-up (``gateway.site.validation.load_checked_site``: the site
file's schema, then the rules that need the device profiles and the files it names) and prints every problem at
once, or "ok" with a summary of what the gateway will control.

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
from gateway.runtime.ocpp_wiring import endpoint_config
from gateway.site.config import (
    ConfigError,
    OcppTransport,
    RtuTransport,
    SiteConfig,
    unit_limit_a,
)
from gateway.site.validation import load_checked_site, load_running_site


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("check-config", help="validate a site file and summarise it",
                                   description="Validate a site file: exit 0 and a summary, or exit 1 and every "
                                               "error found.")
    parser.add_argument("file", type=Path, help="the site file (YAML)")
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help="also load site-specific profiles from DIR (repeatable)")
    parser.add_argument("--state-dir", metavar="DIR", type=Path,
                        help="check the site as the gateway runs it: with the settings changed at run time in DIR "
                             "(the gateway's state directory; only read)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        registry = ProfileRegistry.load(args.profiles)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.state_dir is None:
            site, notes = load_checked_site(path, registry)
        else:
            running = load_running_site(path, registry, args.state_dir)
            site, notes = running.site, running.notes
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.state_dir is None:
        print(f"ok: {path}")
        print(summary(site, registry, notes))
        return 0
    print(f"ok: {path} with the settings in {args.state_dir}")
    print(summary(site, registry, notes))
    print(f"changed at run time ({len(running.state)}):" if running.state else "changed at run time: nothing")
    for line in running.state:
        print(f"  - {line}")
    for warning in running.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def summary(site: SiteConfig, registry: ProfileRegistry, notes: list[str]) -> str:
    supply = f"{site.supply.phases}-phase {site.supply.voltage_v:g} V"
    lines = [
        f"site {site.name!r}: {supply}, installation limit {site.installation_limit_a:g} A, network limit "
        f"{site.network_limit_a:g} A per phase, sharing {'enabled' if site.enabled else 'disabled'}",
        f"chargers: {len(site.chargers)}",
    ]
    for charger in site.chargers:
        transport = charger.transport
        wiring = f"{charger.phases}-phase {charger.phase_rotation}, circuit {charger.circuit}"
        if isinstance(transport, OcppTransport):
            limit = unit_limit_a(charger, transport.max_current_a)
            lines.append(f"  {charger.id}: OCPP charge point {transport.charge_point_id} connector "
                         f"{transport.connector_id}, limit {limit:g} A, {wiring}")
            continue
        assert charger.profile is not None  # a validated Modbus charger has one
        profile: ChargerProfile = registry.charger(charger.profile)
        where = transport.device if isinstance(transport, RtuTransport) else f"{transport.host}:{transport.port}"
        limit = unit_limit_a(charger, profile.nameplate_a)
        lines.append(f"  {charger.id}: {profile.name} via {transport.type} {where} unit {transport.unit}, "
                     f"limit {limit:g} A, {wiring}")
    if any(isinstance(c.transport, OcppTransport) for c in site.chargers) or site.ocpp_endpoint is not None:
        endpoint = endpoint_config(site)
        scheme = "wss" if endpoint.tls_cert_file else "ws"
        lines.append(f"OCPP endpoint: {scheme}://{endpoint.host}:{endpoint.port}/<chargePointId>")
    if site.meter is not None:
        meter = site.meter
        where = meter.transport.device if isinstance(meter.transport, RtuTransport) else \
            f"{meter.transport.host}:{meter.transport.port}"
        lines.append(f"meter: {meter.profile} via {meter.transport.type} {where} unit {meter.transport.unit} on "
                     f"{meter.circuit} (limit {meter.limit_a:g} A, margin {meter.margin_a:g} A, "
                     f"{meter.fallback_limit_a:g} A while silent for {meter.stale_after_s:g} s)")
    lines.append(f"circuits: {len(site.circuits)}")
    lines += [f"  {c.id}: limit {c.limit_a:g} A, below {c.parent}" for c in site.circuits]
    if notes:
        lines.append("notes:")
        lines += [f"  - {n}" for n in notes]
    return "\n".join(lines)
