"""The rules a site file must meet beyond its own schema (``gateway.site.config``): those that need the device
profiles (a transport the profile speaks, a unit id written out when the device's default is not 1, a
communication timeout the device can be programmed with, a meter profile for the meter) and those that need the
files the site file names (OCPP passwords, TLS certificates).

One place for these rules: ``powershare check-config`` prints what they find, ``powershare run`` refuses to start
on them, and the web page's add-follower form answers 422 with them. Every problem is reported at once, so an
installer fixes the file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.ocpp.endpoint import server_tls
from drivers.profile import ProfileRegistry
from gateway.i18n.text import text_of, tr
from gateway.site.config import ConfigError, ConfigIssue, OcppTransport, SiteConfig, parse_site, read_yaml
from gateway.site.overlay import Overlay, compose
from gateway.site.settings import SETTINGS_FILE, SiteRules
from gateway.site.store import JsonStore, StoreError

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
    site, notes = checked_site(read_yaml(path), str(path), registry, path.parent)
    issues = start_file_issues(site, path.parent)
    if issues:
        raise ConfigError(str(path), issues)
    return site, notes


def start_file_issues(site: SiteConfig, base_dir: Path) -> list[ConfigIssue]:
    """The files only a start reads: the central system's key and certificates (``ocpp``) and the page's certificate
    and key (``web``). Checked with the site file, not with a change made on the page: a key set there is written
    after the change has met its rules."""
    issues: list[ConfigIssue] = []
    ocpp = site.ocpp
    if ocpp is not None and ocpp.password_file is not None:
        try:
            read_password(base_dir / ocpp.password_file)
        except (OSError, ValueError) as exc:
            issues.append(ConfigIssue("ocpp.password_file", tr("site.file.unreadable", error=text_of(exc))))
    for name in ("ca_file", "client_cert", "client_key"):
        value = getattr(ocpp, name) if ocpp is not None else None
        if value is not None:
            try:
                (base_dir / value).read_bytes()
            except OSError as exc:
                issues.append(ConfigIssue(f"ocpp.{name}", tr("site.file.unreadable", error=text_of(exc))))
    web = site.web
    if web.enabled and web.tls_cert is not None and web.tls_key is not None:
        try:
            server_tls(base_dir / web.tls_cert, base_dir / web.tls_key)
        except (OSError, ValueError) as exc:
            issues.append(ConfigIssue("web.tls_cert", tr("site.web.tls_unusable", error=str(exc))))
    return issues


def checked_site(data: Any, source: str, registry: ProfileRegistry, base_dir: Path) -> tuple[SiteConfig, list[str]]:
    """Every rule of the site file for ``data`` in its shape (read from ``source``; relative paths start at
    ``base_dir``): the schema and ``check_site``, then the rules that need the profiles and the files it names."""
    extra = profile_issues(data, registry)
    try:
        site, notes = parse_site(data, source, registry.nameplate_a)
    except ConfigError as exc:
        raise ConfigError(source, [*exc.issues, *extra]) from None
    files, file_notes = file_issues(site, base_dir)
    extra += files
    if extra:
        raise ConfigError(source, extra)
    return site, [*notes, *profile_notes(site, registry), *file_notes]


def site_rules(registry: ProfileRegistry, base_dir: Path) -> SiteRules:
    """``checked_site`` for the runtime settings (``gateway.site.settings``): a change made at run time meets the
    very rules the site file meets."""
    return lambda data: checked_site(data, "settings", registry, base_dir)[0]


@dataclass(frozen=True)
class RunningSite:
    """The site as ``powershare run`` would start it: the site file and the settings changed at run time."""

    site: SiteConfig
    notes: list[str]
    """The rules' notes, as ``check-config`` prints them."""
    state: list[str]
    """What the state directory changes, one line each (empty: the file alone)."""
    warnings: list[str]
    """What of the state directory the gateway would not use, and why."""
    set_aside: str | None = None
    """Why the settings would be set aside at start (the site file then runs alone); None if they are used."""


def load_running_site(path: Path, registry: ProfileRegistry, state_dir: Path) -> RunningSite:
    """The site file laid under the settings in ``state_dir`` (``gateway.site.overlay.compose``, as the gateway
    does at start), checked by every rule; reads the state directory only. ``ConfigError`` if the site file alone
    breaks a rule (the gateway would not start)."""
    site, notes = load_checked_site(path, registry)
    store = JsonStore(state_dir / SETTINGS_FILE)
    try:
        document = store.peek()
        overlay = Overlay.from_json(document) if document is not None else Overlay()
    except (ValueError, TypeError, StoreError) as exc:
        why = tr("site.state.unreadable", path=str(store.path), error=str(exc))
        return RunningSite(site, notes, [], [why], why)
    composed = compose(site, overlay)
    try:
        running, running_notes = checked_site(composed.data, f"{path} + {store.path}", registry, path.parent)
    except ConfigError as exc:
        why = tr("site.state.unused", path=str(store.path), problems=text_of(exc))
        return RunningSite(site, notes, [], [*composed.notes, why], why)
    return RunningSite(running, running_notes, describe(site, running, composed.overlay), list(composed.notes))


def describe(file: SiteConfig, running: SiteConfig, overlay: Overlay) -> list[str]:
    """What the settings change of the site file, one line each, in the site file's words."""
    lines: list[str] = []
    for key in ("installation_limit_a", "network_limit_a"):
        if getattr(file, key) != getattr(running, key):
            lines.append(tr("site.state.limit", key=key, value=getattr(running, key), file=getattr(file, key)))
    if file.enabled != running.enabled:
        word = {True: tr("cli.check.enabled"), False: tr("cli.check.disabled")}
        lines.append(tr("site.state.sharing", now=word[running.enabled], file=word[file.enabled]))
    before = {c.id: c for c in file.circuits}
    after = {c.id: c for c in running.circuits}
    lines += [tr("site.state.circuit_added", circuit=c.id, limit=c.limit_a, parent=c.parent)
              for c in running.circuits if c.id not in before]
    lines += [tr("site.state.circuit_changed", circuit=c, limit=after[c].limit_a, parent=after[c].parent)
              for c in after if c in before and after[c] != before[c]]
    lines += [tr("site.state.circuit_removed", circuit=c) for c in before if c not in after]
    chargers = {c.id: c for c in file.chargers}
    for charger in running.chargers:
        old = chargers.get(charger.id)
        if old is None:
            lines.append(tr("site.state.follower_added", charger=charger.id,
                            device=charger.profile or charger.transport.type))
        elif old != charger:
            breaker = f"{charger.breaker_limit_a:g} A" if charger.breaker_limit_a is not None else \
                tr("site.state.nameplate")
            lines.append(tr("site.state.wiring", charger=charger.id, breaker=breaker, phases=charger.phases,
                            rotation=charger.phase_rotation, circuit=charger.circuit))
    kept = {c.id for c in running.chargers}
    lines += [tr("site.state.follower_removed", charger=c) for c in chargers if c not in kept]
    for key in ("meter", "bms", "ocpp"):
        if getattr(file, key) != getattr(running, key):
            lines.append(tr("site.state.section_removed", section=key) if getattr(running, key) is None
                         else tr("site.state.section_set", section=key))
    lines += [tr("site.state.unit_limit", charger=cid, limit=limit)
              for cid, limit in sorted(overlay.unit_limits_a.items())]
    return lines


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
