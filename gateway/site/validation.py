"""The rules a site file must meet beyond its own schema (``gateway.site.config``): those that need the device
profiles (a transport the profile speaks, a unit id written out when the device's default is not 1, a
communication timeout the device can be programmed with, a meter profile for the meter) and those that need the
files the site file names (OCPP passwords, TLS certificates).

One place for these rules: ``powershare check-config`` prints what they find, ``powershare run`` refuses to start
on them, and the web page's add-follower form answers 422 with them. Every problem is reported at once, so an
installer fixes the file in one pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.ocpp.endpoint import server_tls
from drivers.profile import ProfileRegistry
from gateway.i18n.text import text_of, tr
from gateway.site.config import ConfigError, ConfigIssue, OcppTransport, SiteConfig, load_site, read_yaml

MIN_PASSWORD_CHARS = 16
"""The security white paper asks for an AuthorizationKey of at least 16 bytes."""


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
            issues.append(ConfigIssue(f"chargers[{i}].transport.type", tr(
                "site.profile.transport", profile=profile.name, supported=", ".join(supported), kind=kind)))
        if isinstance(transport, dict) and "unit" not in transport and profile.default_unit_id != 1:
            issues.append(ConfigIssue(f"chargers[{i}].transport.unit", tr(
                "site.profile.default_unit", profile=profile.name, unit=profile.default_unit_id)))
        timeout = charger.get("comm_timeout_s", 30.0)
        if profile.points.failsafe_timeout is not None and isinstance(timeout, int | float):
            try:
                profile.encode("failsafe_timeout", float(timeout))
            except ValueError as exc:
                issues.append(ConfigIssue(f"chargers[{i}].comm_timeout_s", tr(
                    "site.profile.timeout_not_programmable", profile=profile.name, error=str(exc))))
    return issues


def _meter_profile_issues(data: Any, registry: ProfileRegistry) -> list[ConfigIssue]:
    """The site meter's profile must exist, be a meter profile and speak the meter's transport."""
    meter = data.get("meter") if isinstance(data, dict) else None
    if not isinstance(meter, dict) or not isinstance(meter.get("profile"), str):
        return []
    name = meter["profile"]
    if name not in registry:
        return [ConfigIssue("meter.profile", tr("site.meter.profile_unknown", profile=name))]
    try:
        profile = registry.meter(name)
    except KeyError:
        return [ConfigIssue("meter.profile", tr("site.meter.charger_profile", profile=name))]
    transport = meter.get("transport")
    kind = transport.get("type") if isinstance(transport, dict) else None
    supported = [t.value for t in profile.transports]
    if isinstance(kind, str) and kind in ("tcp", "rtu", "rtu-over-tcp") and kind not in supported:
        return [ConfigIssue("meter.transport.type", tr("site.profile.transport", profile=profile.name,
                                                       supported=", ".join(supported), kind=kind))]
    return []


def profile_notes(site: SiteConfig, registry: ProfileRegistry) -> list[str]:
    """What the installer should know about the chosen devices (not errors)."""
    notes: list[str] = []
    for charger in site.chargers:
        if isinstance(charger.transport, OcppTransport):
            if charger.transport.failsafe_current_key is None:
                notes.append(tr("site.note.ocpp_without_failsafe", charger=charger.id,
                                station=charger.transport.charge_point_id))
            continue
        assert charger.profile is not None  # a validated Modbus charger has one
        profile = registry.charger(charger.profile)
        caps = profile.capabilities()
        if not caps.has_failsafe:
            notes.append(tr("site.note.without_failsafe", charger=charger.id, profile=profile.name))
        fixed = profile.watchdog.fixed_timeout_s
        if fixed is not None:
            notes.append(tr("site.note.fixed_timeout", charger=charger.id, profile=profile.name, timeout=fixed))
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


def read_password(path: Path) -> str:
    """The AuthorizationKey in a file: its first line, without surrounding white space; ``OSError``/``ValueError``."""
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(tr("site.file.empty", path=str(path)))
    return lines[0].strip()


def file_issues(site: SiteConfig, base_dir: Path) -> tuple[list[ConfigIssue], list[str]]:
    """Errors and notes about the files the OCPP part of a site file names."""
    issues: list[ConfigIssue] = []
    notes: list[str] = []
    for i, charger in enumerate(site.chargers):
        transport = charger.transport
        if not isinstance(transport, OcppTransport):
            continue
        try:
            password = read_password(base_dir / transport.password_file)
        except (OSError, ValueError) as exc:
            issues.append(ConfigIssue(f"chargers[{i}].transport.password_file",
                                      tr("site.file.unreadable", error=text_of(exc))))
            continue
        if len(password) < MIN_PASSWORD_CHARS:
            notes.append(tr("site.note.short_password", charger=charger.id, chars=MIN_PASSWORD_CHARS))
    config = site.ocpp_endpoint
    if config is not None and config.tls_cert_file is not None and config.tls_key_file is not None:
        try:
            server_tls(base_dir / config.tls_cert_file, base_dir / config.tls_key_file)
        except (OSError, ValueError) as exc:
            issues.append(ConfigIssue("ocpp_endpoint.tls_cert_file", tr("site.ocpp_endpoint.tls_unusable",
                                                                        error=str(exc))))
    elif any(isinstance(c.transport, OcppTransport) for c in site.chargers):
        notes.append(tr("site.note.ocpp_without_tls"))
    return issues, notes
