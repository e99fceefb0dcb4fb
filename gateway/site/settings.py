"""Commissioning settings: the site file plus what the installer, the BMS or the web page changed at runtime.

Runtime changes (network limit, enabled flag, unit limits, followers added or removed) are validated by the very
rules of the site file (``gateway.site.config``), persisted atomically before they take effect, and survive restarts
and crashes. A command that breaks a rule, or that cannot be persisted, is refused with ``CommandRejected`` and
changes nothing. A change that alters the site configuration is checked by ``check_site`` as a whole; one that
does not (a unit limit) only by its own rule.

The network limit the BMS writes, and its watchdog, are not settings of this module: they belong to the BMS's own
limit source (``gateway.runtime.bms_limit``), which checks them with ``check_network_limit`` and ``check_amps``.

Unit limits a BMS writes every few seconds are the exception to "persisted before they take effect": with
``deferred=True`` a command takes effect at once and is only marked unsaved; ``flush`` writes what is unsaved, and
the supervisor calls it at most once per ``PERSIST_INTERVAL_S`` and at stop. A flash card then sees one write per
interval, not two fsyncs per BMS write. What a crash loses: the last BMS unit limit of that interval, which falls
back to the value persisted before. That is safe: the BMS rewrites its limits on its next cycle, and while it does
not the BMS watchdog and its fallback limit govern.

If the installer later edits the site file, the file wins for exactly the keys it changed: every persisted value
remembers the file's value at the time it was set, and a different file value now means a deliberate edit. That is
logged, so nothing changes silently.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway.i18n.text import capitalized, joined, msgid, tr
from gateway.runtime.commands import (
    AddFollower,
    CommandRejected,
    RemoveFollower,
    SetEnabled,
    SetNetworkLimit,
    SetUnitLimit,
)
from gateway.site.config import (
    ChargerConfig,
    ConfigIssue,
    NameplateLookup,
    SiteConfig,
    chargers_most_a,
    check_site,
    nameplate_a,
    network_limit_issue,
    unit_limit_a,
)
from gateway.site.input_problems import problem
from gateway.site.store import JsonStore, StoreError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PERSIST_INTERVAL_S = 10.0
"""Deferred (BMS) settings, and the BMS's network limit, are written at most this often."""
_FILE_BACKED = ("network_limit_a", "enabled")

SettingCommand = SetNetworkLimit | SetEnabled | SetUnitLimit | AddFollower | RemoveFollower
"""The commands that change these settings (the BMS's limit and watchdog have their own source)."""


@dataclass
class Overlay:
    """What differs from the site file, as persisted."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """key -> {"value": runtime value, "file": the site file's value when it was set}."""
    unit_limits_a: dict[str, float] = field(default_factory=dict)
    followers_added: list[dict[str, Any]] = field(default_factory=list)
    followers_removed: list[str] = field(default_factory=list)
    bms_watchdog_s: float = 0.0
    """Kept here by versions up to 0.2 (now in the BMS limit source's own file): read so that the source can carry
    it over once, written back unchanged so that nothing is lost before it has."""
    bms_fallback_limit_a: float = 0.0
    """Like ``bms_watchdog_s``."""

    def to_json(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "values": self.values, "unit_limits_a": self.unit_limits_a,
                "followers_added": self.followers_added, "followers_removed": self.followers_removed,
                "bms_watchdog_s": self.bms_watchdog_s, "bms_fallback_limit_a": self.bms_fallback_limit_a}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Overlay:
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown settings format version {doc.get('version')!r}")
        return cls(values=dict(doc.get("values", {})), unit_limits_a=dict(doc.get("unit_limits_a", {})),
                   followers_added=list(doc.get("followers_added", [])),
                   followers_removed=list(doc.get("followers_removed", [])),
                   bms_watchdog_s=float(doc.get("bms_watchdog_s", 0.0)),
                   bms_fallback_limit_a=float(doc.get("bms_fallback_limit_a", 0.0)))


class SiteSettings:
    """The configuration in force; ``apply`` is the one way to change it at runtime."""

    def __init__(self, base: SiteConfig, nameplate_of: NameplateLookup, store: JsonStore | None = None) -> None:
        self._base = base
        self._nameplate_of = nameplate_of
        self._store = store
        self._overlay = Overlay()
        self._unsaved = False
        self.config = base
        self._most: tuple[SiteConfig, float | None] | None = None
        """``chargers_most_a`` of a configuration, kept until the configuration changes."""
        if store is not None:
            self._restore(store)

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
            raise CommandRejected(_readable(issue, config), field=issue.path)

    def unit_max_a(self, charger: ChargerConfig) -> float:
        """The most a unit may be given: its breaker limit, never above its nameplate."""
        nameplate = nameplate_a(charger, self._nameplate_of)
        return min(unit_limit_a(charger, nameplate), nameplate)

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
        overlay = Overlay.from_json(self._overlay.to_json())
        config = self.config
        match command:
            case SetNetworkLimit(limit_a=limit):
                check_amps(limit, tr("settings.limit.network"), config.installation_limit_a,
                           tr("settings.most.installation_limit"))
                config = self._with(config, network_limit_a=limit)
                overlay.values["network_limit_a"] = {"value": limit, "file": self._base.network_limit_a}
                text = f"network limit {limit:g} A"
            case SetEnabled(enabled=enabled):
                config = self._with(config, enabled=enabled)
                overlay.values["enabled"] = {"value": enabled, "file": self._base.enabled}
                text = "power sharing " + ("enabled" if enabled else "disabled")
            case SetUnitLimit(charger_id=cid, limit_a=limit):
                charger = self.charger(cid)
                check_amps(limit, tr("settings.limit.unit", charger=cid), self.unit_max_a(charger),
                           tr("settings.most.unit_maximum"))
                overlay.unit_limits_a[cid] = limit
                text = f"unit {cid} limit {limit:g} A"
            case AddFollower(charger=charger):
                if any(c.id == charger.id for c in config.chargers):
                    raise CommandRejected(tr("settings.charger.exists", charger=charger.id), field="id")
                config = self._with(config, chargers=[*config.chargers, charger])
                overlay.followers_added = [c for c in overlay.followers_added if c.get("id") != charger.id]
                overlay.followers_added.append(charger.model_dump(mode="json"))
                overlay.followers_removed = [i for i in overlay.followers_removed if i != charger.id]
                text = f"follower {charger.id} added ({charger.profile or charger.transport.type})"
            case RemoveFollower(charger_id=cid):
                self.charger(cid)
                config = self._with(config, chargers=[c for c in config.chargers if c.id != cid])
                overlay.followers_added = [c for c in overlay.followers_added if c.get("id") != cid]
                if any(c.id == cid for c in self._base.chargers):
                    overlay.followers_removed.append(cid)
                overlay.unit_limits_a.pop(cid, None)
                text = f"follower {cid} removed"
        if config is not self.config:  # a unit limit leaves the site as it was: its own rule was enough
            errors, _ = check_site(config, self._nameplate_of)
            if errors:
                raise CommandRejected(joined(_readable(e, config) for e in errors), field=errors[0].path)
        if deferred:
            self._unsaved = True
        else:
            self._persist(overlay)
            self._unsaved = False
        self._overlay = overlay
        self.config = config
        return text

    # -- internals ---------------------------------------------------------------------------------------------
    def _with(self, config: SiteConfig, **changes: Any) -> SiteConfig:
        data = config.model_dump(mode="json")
        data.update({k: ([c.model_dump(mode="json") if isinstance(c, ChargerConfig) else c for c in v]
                         if k == "chargers" else v) for k, v in changes.items()})
        try:
            return SiteConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CommandRejected(joined([".".join(str(p) for p in first["loc"]), problem(first)], ": ")) from None

    def _persist(self, overlay: Overlay) -> None:
        if self._store is None:
            return
        try:
            self._store.save(overlay.to_json())
        except StoreError as exc:
            raise CommandRejected(tr("settings.not_saved", error=str(exc))) from exc

    def _restore(self, store: JsonStore) -> None:
        document = store.load()
        if document is None:
            return
        try:
            overlay = Overlay.from_json(document)
        except (ValueError, TypeError) as exc:
            log.error("%s: %s; starting from the site file", store.path, exc)
            return
        config_changes: dict[str, Any] = {}
        for key in _FILE_BACKED:
            entry = overlay.values.get(key)
            if entry is None:
                continue
            file_now = getattr(self._base, key)
            if entry.get("file") == file_now:
                config_changes[key] = entry["value"]
            else:
                log.warning("site file changed %s from %r to %r: the file's value replaces the runtime value %r",
                            key, entry.get("file"), file_now, entry["value"])
                del overlay.values[key]
        base_ids = {c.id for c in self._base.chargers}
        chargers = [c.model_dump(mode="json") for c in self._base.chargers if c.id not in overlay.followers_removed]
        for added in overlay.followers_added:
            if added.get("id") in base_ids:
                log.warning("follower %s is now in the site file; the file's entry is used", added.get("id"))
            else:
                chargers.append(added)
        overlay.followers_removed = [i for i in overlay.followers_removed if i in base_ids]
        config_changes["chargers"] = chargers
        try:
            config = self._with(self._base, **config_changes)
        except CommandRejected as exc:
            log.error("%s does not fit the site file any more (%s); starting from the site file", store.path, exc)
            return
        errors, _ = check_site(config, self._nameplate_of)
        if errors:
            log.error("%s does not fit the site file any more (%s); starting from the site file", store.path,
                      "; ".join(str(e) for e in errors))
            return
        ids = {c.id for c in config.chargers}
        overlay.unit_limits_a = {cid: v for cid, v in overlay.unit_limits_a.items() if cid in ids}
        self._overlay = overlay
        self.config = config


_LABELS = {"network_limit_a": msgid("settings.key.network_limit_a"),
           "installation_limit_a": msgid("settings.key.installation_limit_a"),
           "breaker_limit_a": msgid("settings.key.breaker_limit_a"),
           "phase_rotation": msgid("settings.key.phase_rotation"), "circuit": msgid("settings.key.circuit"),
           "connector_id": msgid("settings.key.connector_id"), "profile": msgid("settings.key.profile"),
           "id": msgid("settings.key.id"), "parent": msgid("settings.key.parent"),
           "fallback_limit_a": msgid("settings.key.fallback_limit_a"), "margin_a": msgid("settings.key.margin_a"),
           "failsafe_current_key": msgid("settings.key.failsafe_current_key")}
"""A site file key -> what an installer calls it; other keys are shown as the file spells them."""


def _label(key: str) -> str:
    return tr(_LABELS[key]) if key in _LABELS else key


def _readable(issue: ConfigIssue, config: SiteConfig) -> str:
    """A rule's finding as an installer reads it on the page or in the BMS log: "bay-3, breaker limit: ..." rather
    than the site file's path "chargers[2].breaker_limit_a" (the path stays the refusal's ``field``)."""
    match = re.fullmatch(r"(chargers|circuits)\[(\d+)\](?:\.(\w+))?|(meter)\.(\w+)|(\w+)", issue.path)
    if match is None:
        return joined([issue.path, issue.message], ": ") if issue.path else issue.message
    items, index, key, meter, meter_key, top = match.groups()
    where: str
    if items is not None:
        entries = config.chargers if items == "chargers" else config.circuits
        who = entries[int(index)].id if int(index) < len(entries) else f"{items}[{index}]"
        where = tr("settings.where.entry", entry=who, key=_label(key)) if key else who
    elif meter is not None:
        where = tr("settings.where.meter", key=_label(meter_key))
    else:
        where = capitalized(_label(top))
    return joined([where, issue.message], ": ")


def check_amps(value: float, label: str, most: float, what: str) -> None:
    """``label`` is what an installer calls the setting ("the network limit"), ``what`` its upper bound ("the
    installation limit"); the field at fault is ``limit_a``."""
    if not math.isfinite(value) or value < 0 or value > most + 1e-9:
        raise CommandRejected(tr("settings.limit.out_of_range", limit=capitalized(label), most_name=what, most=most,
                                 value=value), field="limit_a")
