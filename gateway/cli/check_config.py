"""``powershare check-config FILE``: validate a site file before it goes near a live installation.

It applies every rule the gateway applies at start-up (``gateway.site.config.load_site``) and, on top, the rules that
need the device profiles: the charger's transport must be one its profile speaks, a device whose default unit id
is not 1 must have its unit id written out, and the communication timeout must be one the device can be programmed
with. It prints every problem at once, so the installer fixes the file
in one pass, or "ok" with a summary of what the gateway will control.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError
from drivers.profile import ChargerProfile, ProfileRegistry
from gateway.runtime.ocpp_wiring import endpoint_config, file_issues
from gateway.site.config import (
    ConfigError,
    ConfigIssue,
    OcppTransport,
    RtuTransport,
    SiteConfig,
    load_site,
    read_yaml,
    unit_limit_a,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("check-config", help="validate a site file and summarise it",
                                   description="Validate a site file: exit 0 and a summary, or exit 1 and every "
                                               "error found.")
    parser.add_argument("file", type=Path, help="the site file (YAML)")
    parser.add_argument("--profiles", metavar="DIR", type=Path, action="append", default=[],
                        help="also load site-specific profiles from DIR (repeatable)")
    parser.set_defaults(func=run)


def profile_issues(data: Any, registry: ProfileRegistry) -> list[ConfigIssue]:
    """Rules between the site file and the profiles, checked on the raw data so they are reported even when other
    parts of the file are wrong: transport kind, and the communication timeout the device accepts."""
    issues: list[ConfigIssue] = _meter_profile_issues(data, registry)
    chargers = data.get("chargers") if isinstance(data, dict) else None
    if not isinstance(chargers, list):
        return issues
    for i, charger in enumerate(chargers):
        if not isinstance(charger, dict) or not isinstance(charger.get("profile"), str):
            continue
        try:
            profile = registry.charger(charger["profile"])
        except KeyError:
            continue  # load_site reports unknown profiles
        transport = charger.get("transport")
        kind = transport.get("type") if isinstance(transport, dict) else None
        supported = [t.value for t in profile.transports]
        if isinstance(kind, str) and kind in ("tcp", "rtu", "rtu-over-tcp") and kind not in supported:
            issues.append(ConfigIssue(f"chargers[{i}].transport.type", f"profile {profile.name!r} supports "
                                      f"{', '.join(supported)}, not {kind}"))
        if isinstance(transport, dict) and "unit" not in transport and profile.default_unit_id != 1:
            issues.append(ConfigIssue(f"chargers[{i}].transport.unit", f"profile {profile.name!r} answers on "
                                      f"unit {profile.default_unit_id} by default; set unit explicitly"))
        timeout = charger.get("comm_timeout_s", 30.0)
        if profile.points.failsafe_timeout is not None and isinstance(timeout, int | float):
            try:
                profile.encode("failsafe_timeout", float(timeout))
            except ValueError as exc:
                issues.append(ConfigIssue(f"chargers[{i}].comm_timeout_s", f"profile {profile.name!r} cannot be "
                                          f"programmed with it: {exc}"))
    return issues


def _meter_profile_issues(data: Any, registry: ProfileRegistry) -> list[ConfigIssue]:
    """The site meter's profile must exist, be a meter profile and speak the meter's transport."""
    meter = data.get("meter") if isinstance(data, dict) else None
    if not isinstance(meter, dict) or not isinstance(meter.get("profile"), str):
        return []
    name = meter["profile"]
    if name not in registry:
        return [ConfigIssue("meter.profile", f"no profile named {name!r} (see `powershare profiles --kind meter`)")]
    try:
        profile = registry.meter(name)
    except KeyError:
        return [ConfigIssue("meter.profile", f"{name!r} is a charger profile; the meter needs a meter profile "
                            "(see `powershare profiles --kind meter`)")]
    transport = meter.get("transport")
    kind = transport.get("type") if isinstance(transport, dict) else None
    supported = [t.value for t in profile.transports]
    if isinstance(kind, str) and kind in ("tcp", "rtu", "rtu-over-tcp") and kind not in supported:
        return [ConfigIssue("meter.transport.type", f"profile {profile.name!r} supports {', '.join(supported)}, "
                            f"not {kind}")]
    return []


def profile_notes(site: SiteConfig, registry: ProfileRegistry) -> list[str]:
    """What the installer should know about the chosen devices (not errors)."""
    notes: list[str] = []
    for charger in site.chargers:
        if isinstance(charger.transport, OcppTransport):
            if charger.transport.failsafe_current_key is None:
                notes.append(f"{charger.id} (OCPP {charger.transport.charge_point_id}) has no fail-safe "
                             "configuration key: while unreachable it is booked at its full limit")
            continue
        assert charger.profile is not None  # a validated Modbus charger has one
        profile = registry.charger(charger.profile)
        caps = profile.capabilities()
        if not caps.has_failsafe:
            notes.append(f"{charger.id} ({profile.name}) has no programmable fail-safe: while unreachable it is "
                         "booked at its full limit")
        fixed = profile.watchdog.fixed_timeout_s
        if fixed is not None:
            notes.append(f"{charger.id} ({profile.name}) sets its communication timeout on the device "
                         f"(default {fixed:g} s), not from comm_timeout_s")
    return notes


def load_checked_site(path: Path, registry: ProfileRegistry) -> tuple[SiteConfig, list[str]]:
    """Everything ``check-config`` checks, for every command that starts from a site file (``run`` too).

    Returns the site and its notes; raises ``ConfigError`` listing every problem found.
    """
    data = read_yaml(path)
    extra = profile_issues(data, registry)
    try:
        site, notes = load_site(path, registry.nameplate_a)
    except ConfigError as exc:
        raise ConfigError(str(path), [*exc.issues, *extra]) from None
    files, file_notes = file_issues(site, path.parent)
    extra += files
    if extra:
        raise ConfigError(str(path), extra)
    return site, [*notes, *profile_notes(site, registry), *file_notes]


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        registry = ProfileRegistry.load(args.profiles)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        site, notes = load_checked_site(path, registry)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"ok: {path}")
    print(summary(site, registry, notes))
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
