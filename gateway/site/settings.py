"""Commissioning settings: the site file plus what the installer, the BMS or the web page changed at runtime.

Runtime changes (network limit, sharing on/off, unit limits, followers added or removed, the installation limit,
circuits, each unit's wiring, the site meter, the BMS face, the central system) are kept as an overlay over the site
file (``gateway.site.overlay``). A change is validated by laying the overlay with the change over the site file and
running the site file's own rules on the result: the schema and ``check_site`` (``gateway.site.config``), and, for
changes to the site's shape, the rules that need the profiles and the files it names (``gateway.site.validation``,
given as ``rules``). A network limit or on/off changes one value: only ``check_site`` runs; a unit limit only its own
rule. It is persisted atomically before it takes effect and survives restarts and crashes. A command that breaks a
rule, or that cannot be persisted, is refused with ``CommandRejected`` and changes nothing.

Two configurations are kept: ``config``, the one in force, and ``saved``, the one the gateway starts with next
time. They differ only in what cannot change under a running gateway: the BMS face and the central system's
connection (``bms``, ``ocpp``), and the site meter's device (its profile and connection; its limits and circuit
apply at once). Such a change is "saved; applies when the gateway restarts" (``restart_needed``). The controller's
inputs (installation and network limits, circuits, breakers, phase rotation) apply at the next control step.

The network limit the BMS writes, and its watchdog, are not settings of this module: they belong to the BMS's own
limit source (``gateway.runtime.bms_limit``), which checks them with ``check_network_limit`` and ``check_amps``.

Unit limits a BMS writes every few seconds are the exception to "persisted before they take effect": with
``deferred=True`` a command takes effect at once and is only marked unsaved; ``flush`` writes what is unsaved, and
the supervisor calls it at most once per ``PERSIST_INTERVAL_S`` and at stop. A flash card then sees one write per
interval, not two fsyncs per BMS write. What a crash loses: the last BMS unit limit of that interval, which falls
back to the value persisted before. That is safe: the BMS rewrites its limits on its next cycle, and while it does
not the BMS watchdog and its fallback limit govern.

If the installer later edits the site file, the file wins for exactly the keys it changed (``compose``). If what
remains no longer passes the rules (a unit on a circuit the file removed), the settings file is set aside as
``settings.json.unused-<n>`` and the gateway starts from the site file alone; both are logged, and
``powershare check-config --state-dir`` says so before a start.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.i18n.text import capitalized, joined, msgid, text_of, tr
from gateway.runtime.commands import (
    AddFollower,
    CommandRejected,
    RemoveCircuit,
    RemoveFollower,
    SetBms,
    SetCircuit,
    SetEnabled,
    SetInstallationLimit,
    SetMeter,
    SetNetworkLimit,
    SetOcppUpstream,
    SetUnitLimit,
    SetUnitWiring,
)
from gateway.site.config import (
    MAX_AMPS,
    ChargerConfig,
    ConfigError,
    ConfigIssue,
    NameplateLookup,
    SiteConfig,
    chargers_most_a,
    check_site,
    nameplate_a,
    network_limit_issue,
    parse_site,
    unit_limit_a,
)
from gateway.site.overlay import WIRING_KEYS, Composed, Overlay, compose
from gateway.site.store import JsonStore, StoreError, write_atomically

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
"""The overlay's file in the state directory."""
KEY_FILE = "ocpp-authorization-key"
"""The central system's AuthorizationKey when it was set on the page (state directory, mode 0600)."""
PERSIST_INTERVAL_S = 10.0
"""Deferred (BMS) settings, and the BMS's network limit, are written at most this often."""
RESTART_KEYS = ("meter", "bms", "ocpp")
"""Sections whose changes may wait for a restart (see the module docstring)."""

SiteRules = Callable[[dict[str, Any]], SiteConfig]
"""Every rule of the site file for a would-be site in the site file's shape; raises ``ConfigError``."""

SettingCommand = (SetNetworkLimit | SetEnabled | SetUnitLimit | AddFollower | RemoveFollower | SetInstallationLimit
                  | SetCircuit | RemoveCircuit | SetUnitWiring | SetMeter | SetBms | SetOcppUpstream)
"""The commands that change these settings (the BMS's limit and watchdog have their own source)."""
_SHAPE_COMMANDS = (AddFollower, SetUnitWiring, SetMeter, SetBms, SetOcppUpstream, SetCircuit, RemoveCircuit)
"""Commands that change what the profile and file rules look at; limits and on/off need only the site's own."""


class SiteSettings:
    """The configuration in force; ``apply`` is the one way to change it at runtime."""

    def __init__(self, base: SiteConfig, nameplate_of: NameplateLookup, store: JsonStore | None = None, *,
                 rules: SiteRules | None = None) -> None:
        """``rules``: every rule of the site file (``gateway.site.validation.site_rules``); without it, the schema
        and ``check_site`` only (tests that have no profile registry)."""
        self._base = base
        self._nameplate_of = nameplate_of
        self._store = store
        self._own_rules: SiteRules = lambda data: parse_site(data, "settings", nameplate_of)[0]
        self._rules = rules if rules is not None else self._own_rules
        self._overlay = Overlay()
        self._unsaved = False
        self.config = base
        """In force now."""
        self.saved = base
        """What the gateway starts with next time (``config`` but for changes that wait for a restart)."""
        self.notes: tuple[str, ...] = ()
        """What the site file overrode at start, and whether the settings file was set aside."""
        self._most: tuple[SiteConfig, float | None] | None = None
        """``chargers_most_a`` of a configuration, kept until the configuration changes."""
        if store is not None:
            self._restore(store)
        self._started = self.config.model_dump(mode="json", include=set(RESTART_KEYS))

    # -- reading -----------------------------------------------------------------------------------------------
    @property
    def unit_limits_a(self) -> dict[str, float]:
        return dict(self._overlay.unit_limits_a)

    @property
    def legacy_bms_watchdog(self) -> tuple[float, float]:
        """(watchdog s, fallback A) as versions up to 0.2 persisted them here; (0, 0) if they did not."""
        return self._overlay.bms_watchdog_s, self._overlay.bms_fallback_limit_a

    def check_network_limit(self, limit_a: float) -> None:
        """The network limit's own rules (``gateway.site.config.network_limit_issue``), without revalidating the
        site: what the BMS's limit source checks on every write. Raises ``CommandRejected``."""
        config = self.config
        check_amps(limit_a, tr("settings.limit.network"), config.installation_limit_a,
                   tr("settings.most.installation_limit"))
        if self._most is None or self._most[0] is not config:
            self._most = (config, chargers_most_a(config, self._nameplate_of) if config.chargers else None)
        issue = network_limit_issue(limit_a, config.installation_limit_a, self._most[1])
        if issue is not None:
            raise CommandRejected(_readable(issue, config.model_dump(mode="json")), field=issue.path)

    @property
    def added_here(self) -> tuple[str, ...]:
        """The followers added at run time (not in the site file)."""
        return tuple(str(c.get("id")) for c in self._overlay.followers_added)

    @property
    def restart_needed(self) -> tuple[str, ...]:
        """The sections saved but not in force until the gateway restarts (``meter``, ``bms``, ``ocpp``)."""
        return tuple(k for k in RESTART_KEYS if getattr(self.config, k) != getattr(self.saved, k))

    def unit_max_a(self, charger: ChargerConfig) -> float:
        """The most a unit may be given: its breaker limit, never above its nameplate."""
        nameplate = nameplate_a(charger, self._nameplate_of)
        return min(unit_limit_a(charger, nameplate), nameplate)

    def nameplate_a(self, charger: ChargerConfig) -> float:
        return nameplate_a(charger, self._nameplate_of)

    def charger(self, charger_id: str) -> ChargerConfig:
        for charger in self.config.chargers:
            if charger.id == charger_id:
                return charger
        raise CommandRejected(tr("settings.charger.unknown", charger=charger_id), field="charger_id")

    # -- changing ----------------------------------------------------------------------------------------------
    @property
    def unsaved(self) -> bool:
        """A deferred command took effect and is not on disk yet."""
        return self._unsaved

    def flush(self) -> None:
        """Write what deferred commands changed; a failure is logged and retried at the next flush."""
        if not self._unsaved:
            return
        try:
            self._persist(self._overlay)
        except CommandRejected as exc:
            log.error("%s", exc)
            return
        self._unsaved = False

    def apply(self, command: SettingCommand, *, deferred: bool = False) -> str:
        """Validate and persist ``command``; returns a one-line description for the log.

        Raises ``CommandRejected`` (nothing changed) if a rule refuses it or it cannot be persisted. ``deferred``:
        take effect now and leave the write to ``flush`` (see the module docstring).
        """
        overlay = self._overlay.copy()
        file = self._base.model_dump(mode="json")
        started = dict(self._started)
        key: str | None = None
        match command:
            case SetNetworkLimit(limit_a=limit):
                check_amps(limit, tr("settings.limit.network"), self.config.installation_limit_a,
                           tr("settings.most.installation_limit"))
                overlay.set("network_limit_a", limit, file["network_limit_a"])
                text = f"network limit {limit:g} A"
            case SetEnabled(enabled=enabled):
                overlay.set("enabled", enabled, file["enabled"])
                text = "power sharing " + ("enabled" if enabled else "disabled")
            case SetUnitLimit(charger_id=cid, limit_a=limit):
                charger = self.charger(cid)
                check_amps(limit, tr("settings.limit.unit", charger=cid), self.unit_max_a(charger),
                           tr("settings.most.unit_maximum"))
                overlay.unit_limits_a[cid] = limit
                text = f"unit {cid} limit {limit:g} A"
            case AddFollower(charger=charger):
                if any(c.id == charger.id for c in self.config.chargers):
                    raise CommandRejected(tr("settings.charger.exists", charger=charger.id), field="id")
                overlay.followers_added = [c for c in overlay.followers_added if c.get("id") != charger.id]
                overlay.followers_added.append(charger.model_dump(mode="json"))
                overlay.followers_removed = [i for i in overlay.followers_removed if i != charger.id]
                text = f"follower {charger.id} added ({charger.profile or charger.transport.type})"
            case RemoveFollower(charger_id=cid):
                self.charger(cid)
                overlay.followers_added = [c for c in overlay.followers_added if c.get("id") != cid]
                if any(c.id == cid for c in self._base.chargers):
                    overlay.followers_removed.append(cid)
                for name in WIRING_KEYS:
                    overlay.values.pop(f"chargers.{cid}.{name}", None)
                overlay.unit_limits_a.pop(cid, None)
                text = f"follower {cid} removed"
            case SetInstallationLimit(limit_a=limit):
                check_amps(limit, tr("settings.limit.installation"), MAX_AMPS, tr("settings.most.site_file"))
                overlay.set("installation_limit_a", limit, file["installation_limit_a"])
                text = f"installation limit {limit:g} A"
            case SetCircuit(circuit_id=old_id, circuit=circuit):
                text = self._set_circuit(overlay, file, started, old_id, circuit.model_dump(mode="json"))
            case RemoveCircuit(circuit_id=cid):
                text = self._remove_circuit(overlay, file, cid)
            case SetUnitWiring():
                text = self._set_wiring(overlay, file, command)
            case SetMeter(meter=meter):
                overlay.set("meter", meter.model_dump(mode="json") if meter else None, file["meter"])
                text = "site meter " + (f"{meter.profile} on {meter.circuit}, limit {meter.limit_a:g} A" if meter
                                        else "removed")
            case SetBms(bms=bms):
                overlay.set("bms", bms.model_dump(mode="json") if bms else None, file["bms"])
                text = "BMS face " + ((f"on port {bms.port}, unit {bms.unit_id}" if bms.enabled else "off")
                                      if bms else "removed")
            case SetOcppUpstream(ocpp=ocpp):
                section = ocpp.model_dump(mode="json") if ocpp else None
                if section is not None and section["password"] is not None and self._key_file is not None:
                    key = section["password"]
                    section.update(password=None, password_file=str(self._key_file))
                overlay.set("ocpp", section, file["ocpp"])
                text = "central system " + (f"{ocpp.url} as {ocpp.charge_point_id}" if ocpp else "removed")
        config, saved = self.config, self.saved
        if isinstance(command, SetNetworkLimit | SetEnabled):
            saved, config = self._with_value(command)
        elif overlay.values != self._overlay.values or overlay.followers_added != self._overlay.followers_added \
                or overlay.followers_removed != self._overlay.followers_removed:
            rules = self._rules if isinstance(command, _SHAPE_COMMANDS) else self._own_rules
            saved, config = self._validated(compose(self._base, overlay), rules, started)
        if deferred:
            self._unsaved = True
        else:
            self._persist(overlay, key)
            self._unsaved = False
        self._overlay = overlay
        self._started = started
        self.config, self.saved = config, saved
        if isinstance(command, SetMeter | SetBms | SetOcppUpstream) and self.restart_needed:
            text += " (saved; applies when the gateway restarts)"
        return text

    # -- the circuit tree and the units' wiring ------------------------------------------------------------------
    def _set_circuit(self, overlay: Overlay, file: dict[str, Any], started: dict[str, Any], old_id: str | None,
                     circuit: dict[str, Any]) -> str:
        """Add or change one node; a new name is followed by the units, sub-circuits and meter on the node."""
        site = compose(self._base, overlay).data
        ids = [c["id"] for c in site["circuits"]]
        new_id = circuit["id"]
        if old_id is None:
            if new_id in ids:
                raise CommandRejected(tr("settings.circuit.exists", circuit=new_id), field="id")
            _set_node(overlay, file, new_id, circuit)
            return f"circuit {new_id} added: limit {circuit['limit_a']:g} A, below {circuit['parent']}"
        if old_id not in ids:
            raise CommandRejected(tr("settings.circuit.unknown", circuit=old_id), field="circuit_id")
        if new_id == old_id:
            _set_node(overlay, file, new_id, circuit)
            return f"circuit {new_id}: limit {circuit['limit_a']:g} A, below {circuit['parent']}"
        if new_id in ids:
            raise CommandRejected(tr("settings.circuit.exists", circuit=new_id), field="id")
        _set_node(overlay, file, old_id, None)
        _set_node(overlay, file, new_id, circuit)
        for child in site["circuits"]:
            if child["parent"] == old_id and child["id"] != old_id:
                _set_node(overlay, file, child["id"], {**child, "parent": new_id})
        for charger in site["chargers"]:
            if charger["circuit"] == old_id:
                self._set_charger_key(overlay, file, charger["id"], "circuit", new_id)
        meter = site.get("meter")
        if meter is not None and meter["circuit"] == old_id:
            overlay.set("meter", {**meter, "circuit": new_id}, file["meter"])
        if started.get("meter") is not None and started["meter"]["circuit"] == old_id:
            started["meter"] = {**started["meter"], "circuit": new_id}  # the meter in force: the same board renamed
        return f"circuit {old_id} renamed {new_id}: limit {circuit['limit_a']:g} A, below {circuit['parent']}"

    def _remove_circuit(self, overlay: Overlay, file: dict[str, Any], circuit_id: str) -> str:
        site = compose(self._base, overlay).data
        if circuit_id not in {c["id"] for c in site["circuits"]}:
            raise CommandRejected(tr("settings.circuit.unknown", circuit=circuit_id), field="circuit_id")
        on_it = [c["id"] for c in site["chargers"] if c["circuit"] == circuit_id]
        below = [c["id"] for c in site["circuits"] if c["parent"] == circuit_id]
        if on_it or below:
            named = [*(tr("settings.feeds.unit", name=u) for u in on_it[:3]),
                     *(tr("settings.feeds.circuit", name=c) for c in below[:3])]
            more = len(on_it) + len(below) - len(named)
            raise CommandRejected(tr("settings.circuit.feeds_more", circuit=circuit_id, what=joined(named, ", "),
                                     more=more) if more else
                                  tr("settings.circuit.feeds", circuit=circuit_id, what=joined(named, ", ")),
                                  field="circuit_id")
        _set_node(overlay, file, circuit_id, None)
        return f"circuit {circuit_id} removed"

    def _set_wiring(self, overlay: Overlay, file: dict[str, Any], command: SetUnitWiring) -> str:
        cid = command.charger_id
        self.charger(cid)
        wiring = {"breaker_limit_a": command.breaker_limit_a, "phases": command.phases,
                  "phase_rotation": command.phase_rotation, "circuit": command.circuit}
        for name, value in wiring.items():
            self._set_charger_key(overlay, file, cid, name, value)
        breaker = f"{command.breaker_limit_a:g} A" if command.breaker_limit_a is not None else "nameplate"
        return (f"unit {cid} wiring: breaker {breaker}, {command.phases} phase(s) {command.phase_rotation}, "
                f"circuit {command.circuit}")

    @staticmethod
    def _set_charger_key(overlay: Overlay, file: dict[str, Any], cid: str, name: str, value: Any) -> None:
        """A wiring key of a charger: in the overlay's values for a charger of the site file, in its entry for a
        follower added at run time."""
        for added in overlay.followers_added:
            if added.get("id") == cid:
                added[name] = value
                return
        charger = next(c for c in file["chargers"] if c["id"] == cid)
        overlay.set(f"chargers.{cid}.{name}", value, charger.get(name))

    # -- validation and persistence -------------------------------------------------------------------------------
    def _validated(self, composed: Composed, rules: SiteRules,
                   started: dict[str, Any]) -> tuple[SiteConfig, SiteConfig]:
        """(saved, in force) for a would-be overlay, or ``CommandRejected`` with every rule it breaks. ``started``:
        the sections in force since the start (``RESTART_KEYS``)."""
        saved = _checked(rules, composed.data)
        running = dict(composed.data)
        for key in ("bms", "ocpp"):
            running[key] = started.get(key)
        if not _same_device(started.get("meter"), running.get("meter")):
            running["meter"] = started.get("meter")
        if running == composed.data:
            return saved, saved
        try:
            config = _checked(self._own_rules, running)
        except CommandRejected as exc:
            raise CommandRejected(tr("settings.restart_first", problems=text_of(exc)), field=exc.field) from None
        return saved, config

    def _with_value(self, command: SetNetworkLimit | SetEnabled) -> tuple[SiteConfig, SiteConfig]:
        """(saved, in force) with a new network limit or on/off: the one value changes in both, and the site's
        cross-field rules (``check_site``) are run on each, without laying the whole overlay over the site file
        again (the value's own range was checked above; nothing else changed)."""
        value = command.limit_a if isinstance(command, SetNetworkLimit) else command.enabled
        key = "network_limit_a" if isinstance(command, SetNetworkLimit) else "enabled"
        saved = self.saved.model_copy(update={key: value})
        config = saved if self.config is self.saved else self.config.model_copy(update={key: value})
        for site in (saved,) if config is saved else (saved, config):
            errors, _ = check_site(site, self._nameplate_of)
            if errors:
                data = site.model_dump(mode="json")
                raise CommandRejected(joined(_readable(e, data) for e in errors), field=errors[0].path)
        return saved, config

    @property
    def _key_file(self) -> Path | None:
        """Absolute: the section names it, and the OCPP client and an exported site file read it from anywhere."""
        return self._store.path.parent.absolute() / KEY_FILE if self._store is not None else None

    def _persist(self, overlay: Overlay, key: str | None = None) -> None:
        """Write the overlay (and a new AuthorizationKey first); on failure nothing is changed on disk."""
        if self._store is None:
            return
        key_file = self._key_file
        assert key_file is not None
        try:
            previous = key_file.read_bytes() if key is not None and key_file.exists() else None
        except OSError as exc:
            raise CommandRejected(tr("settings.not_saved", error=f"{key_file}: {exc.strerror or exc}")) from exc
        try:
            if key is not None:
                write_atomically(key_file, f"{key}\n".encode())
            self._store.save(overlay.to_json())
        except StoreError as exc:
            if key is not None:
                _restore_key(key_file, previous)
            raise CommandRejected(tr("settings.not_saved", error=str(exc))) from exc
        ocpp = overlay.values.get("ocpp", {}).get("value") if "ocpp" in overlay.values else None
        if not (isinstance(ocpp, dict) and ocpp.get("password_file") == str(key_file)):
            key_file.unlink(missing_ok=True)  # no longer used: a central system's key does not linger

    def _restore(self, store: JsonStore) -> None:
        document = store.load()
        if document is None:
            return
        try:
            overlay = Overlay.from_json(document)
        except (ValueError, TypeError) as exc:
            log.error("%s: %s; starting from the site file", store.path, exc)
            return
        composed = compose(self._base, overlay)
        for note in composed.notes:
            log.warning("%s", note)
        try:
            config = _checked(self._rules, composed.data)
        except CommandRejected as exc:
            try:
                kept = tr("settings.kept_as", name=store.set_aside("unused").name)
            except OSError as error:
                kept = tr("settings.not_kept", path=str(store.path), error=str(error.strerror or error))
            self.notes = (*composed.notes, tr("settings.set_aside", problems=text_of(exc), kept=kept))
            log.error("%s", self.notes[-1])
            return
        ids = {c.id for c in config.chargers}
        composed.overlay.unit_limits_a = {c: v for c, v in composed.overlay.unit_limits_a.items() if c in ids}
        self._overlay = composed.overlay
        self.config = self.saved = config
        self.notes = composed.notes


def _set_node(overlay: Overlay, file: dict[str, Any], circuit_id: str, node: dict[str, Any] | None) -> None:
    in_file = next((c for c in file["circuits"] if c["id"] == circuit_id), None)
    overlay.set(f"circuits.{circuit_id}", node, in_file)


def _same_device(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Two meter sections that read the same device the same way: then only limits and circuit differ, which the
    running gateway takes at its next control step."""
    if a is None or b is None:
        return a is b
    return (a["profile"], a["transport"]) == (b["profile"], b["transport"])


def _restore_key(path: Path, previous: bytes | None) -> None:
    try:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            write_atomically(path, previous)
    except (OSError, StoreError) as exc:
        log.error("the central system's key file %s could not be put back: %s", path, exc)


def _checked(rules: SiteRules, data: dict[str, Any]) -> SiteConfig:
    try:
        return rules(data)
    except ConfigError as exc:
        issues = exc.issues
        raise CommandRejected(joined(_readable(i, data) for i in issues),
                              field=issues[0].path if issues else None) from None


_LABELS = {"network_limit_a": msgid("settings.key.network_limit_a"),
           "installation_limit_a": msgid("settings.key.installation_limit_a"),
           "breaker_limit_a": msgid("settings.key.breaker_limit_a"),
           "phase_rotation": msgid("settings.key.phase_rotation"), "circuit": msgid("settings.key.circuit"),
           "connector_id": msgid("settings.key.connector_id"), "profile": msgid("settings.key.profile"),
           "id": msgid("settings.key.id"), "parent": msgid("settings.key.parent"),
           "fallback_limit_a": msgid("settings.key.fallback_limit_a"), "margin_a": msgid("settings.key.margin_a"),
           "failsafe_current_key": msgid("settings.key.failsafe_current_key"),
           "phases": msgid("settings.key.phases"), "limit_a": msgid("settings.key.limit_a"),
           "stale_after_s": msgid("settings.key.stale_after_s"), "comm_timeout_s": msgid("settings.key.timeout"),
           "transport": msgid("settings.key.transport"), "transport.type": msgid("settings.key.transport_type"),
           "transport.host": msgid("settings.key.host"), "transport.port": msgid("settings.key.port"),
           "transport.unit": msgid("settings.key.unit"), "transport.device": msgid("settings.key.device"),
           "transport.password_file": msgid("settings.key.password_file"), "host": msgid("settings.key.listen"),
           "port": msgid("settings.key.port"), "unit_id": msgid("settings.key.unit"),
           "allow_write_from": msgid("settings.key.allow_write_from"), "read_only": msgid("settings.key.read_only"),
           "url": msgid("settings.key.url"), "charge_point_id": msgid("settings.key.charge_point_id"),
           "security_profile": msgid("settings.key.security_profile"), "password": msgid("settings.key.password"),
           "password_file": msgid("settings.key.key_file"), "password_env": msgid("settings.key.key_variable"),
           "ca_file": msgid("settings.key.ca_file"), "client_cert": msgid("settings.key.client_cert"),
           "client_key": msgid("settings.key.client_key")}
"""A site file key -> what an installer calls it; other keys are shown as the file spells them."""
_SECTIONS = {"meter": msgid("settings.section.meter"), "bms": msgid("settings.section.bms"),
             "ocpp": msgid("settings.section.ocpp")}
_TRANSPORT_TAGS = re.compile(r"\.transport\.(tcp|rtu|rtu-over-tcp|ocpp)(?=\.|$)")


def _label(key: str) -> str:
    return tr(_LABELS[key]) if key in _LABELS else key


def _readable(issue: ConfigIssue, data: dict[str, Any]) -> str:
    """A rule's finding as an installer reads it on the page or in the BMS log: "bay-3, breaker limit: ..." rather
    than the site file's path "chargers[2].breaker_limit_a" (the path stays the refusal's ``field``)."""
    path = _TRANSPORT_TAGS.sub(".transport", issue.path)
    match = re.fullmatch(r"(chargers|circuits)\[(\d+)\](?:\.([\w.-]+))?|(meter|bms|ocpp)(?:\.([\w.-]+))?|(\w+)",
                         path)
    if match is None:
        return joined([issue.path, issue.message], ": ") if issue.path else issue.message
    items, index, key, section, section_key, top = match.groups()
    where: str
    if items is not None:  # a unit or circuit by its name, as written ("bay-3, breaker limit")
        entries = data.get(items)
        entry = entries[int(index)] if isinstance(entries, list) and int(index) < len(entries) else None
        who = str(entry.get("id")) if isinstance(entry, dict) and entry.get("id") else f"{items}[{index}]"
        where = tr("settings.where.entry", entry=who, key=_label(key)) if key else who
    elif section is not None:
        name = tr(_SECTIONS[section])
        where = capitalized(tr("settings.where.section", section=name, key=_label(section_key))
                            if section_key else name)
    else:
        where = capitalized(_label(top))
    return joined([where, issue.message], ": ")


def check_amps(value: float, label: str, most: float, what: str) -> None:
    """``label`` is what an installer calls the setting ("the network limit"), ``what`` its upper bound ("the
    installation limit"); the field at fault is ``limit_a``."""
    if not math.isfinite(value) or value < 0 or value > most + 1e-9:
        raise CommandRejected(tr("settings.limit.out_of_range", limit=capitalized(label), most_name=what, most=most,
                                 value=value), field="limit_a")
