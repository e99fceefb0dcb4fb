"""What the installer, the BMS or the page changed at run time, and how it is laid over the site file.

The overlay is what ``settings.json`` in the state directory holds. Every value it sets remembers the site file's
value at the time it was set, keyed by where it sits in the site file:

* ``installation_limit_a``, ``network_limit_a``, ``enabled``: the top-level keys;
* ``circuits.<id>``: one circuit node, the whole entry (``None``: removed; a file value of ``None``: added here);
* ``chargers.<id>.<key>``: one wiring key (breaker limit, phases, phase rotation, circuit) of a charger of the site
  file (followers added at run time are kept whole in ``followers_added`` and edited there);
* ``meter``, ``bms``, ``ocpp``: a whole section (``None``: none).

``compose`` lays the overlay over the site file. A file value that differs from the one remembered means the
installer edited the file since: the file then wins for exactly that key, and a note says so (nothing changes
silently). A file that now says what the overlay says simply absorbs the entry. Pure: no I/O, no clock.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gateway.site.config import SiteConfig

FORMAT_VERSION = 1
TOP_KEYS = ("installation_limit_a", "network_limit_a", "enabled", "meter", "bms", "ocpp")
WIRING_KEYS = ("breaker_limit_a", "phases", "phase_rotation", "circuit")
"""What may be changed at run time of a charger the site file describes."""


@dataclass
class Overlay:
    """What differs from the site file, as persisted."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """key path -> {"value": runtime value, "file": the site file's value when it was set}."""
    unit_limits_a: dict[str, float] = field(default_factory=dict)
    followers_added: list[dict[str, Any]] = field(default_factory=list)
    followers_removed: list[str] = field(default_factory=list)
    bms_watchdog_s: float = 0.0
    bms_fallback_limit_a: float = 0.0

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

    def copy(self) -> Overlay:
        return Overlay.from_json(copy.deepcopy(self.to_json()))

    def set(self, key: str, value: Any, file_value: Any) -> None:
        """Set ``key``; an entry that comes back to the file's value is dropped (the file says it already)."""
        if value == file_value:
            self.values.pop(key, None)
        else:
            self.values[key] = {"value": value, "file": file_value}


@dataclass(frozen=True)
class Composed:
    data: dict[str, Any]
    """The site as the gateway runs it, in the site file's shape, for the site file's rules."""
    overlay: Overlay
    """The overlay without the entries the site file overrode."""
    notes: tuple[str, ...]
    """What the site file overrode, one line each, for the log and ``check-config``."""


def file_value(file: dict[str, Any], key: str) -> Any:
    """The value at ``key`` (a key path, see the module docstring) in a site file's data; ``KeyError`` if the key
    names a charger the file does not have."""
    kind, _, rest = key.partition(".")
    if kind == "circuits":
        return next((c for c in file.get("circuits", ()) if c["id"] == rest), None)
    if kind == "chargers":
        charger_id, _, name = rest.rpartition(".")
        charger = next((c for c in file.get("chargers", ()) if c["id"] == charger_id), None)
        if charger is None:
            raise KeyError(charger_id)
        return charger.get(name)
    return file.get(key)


def compose(base: SiteConfig, overlay: Overlay) -> Composed:
    """The site file with the overlay laid over it (see the module docstring)."""
    file = base.model_dump(mode="json")
    data = copy.deepcopy(file)
    kept = overlay.copy()
    notes: list[str] = []
    circuits: dict[str, Any] = {}
    wiring: dict[str, dict[str, Any]] = {}
    for key, entry in sorted(overlay.values.items()):
        try:
            now = file_value(file, key)
        except KeyError as exc:
            notes.append(f"{key}: charger {exc.args[0]} is no longer in the site file; its run-time setting is "
                         "dropped")
            del kept.values[key]
            continue
        if entry.get("file") != now:
            if entry.get("value") != now:
                notes.append(_overridden(key, entry, now))
            del kept.values[key]
            continue
        kind, _, rest = key.partition(".")
        if kind == "circuits":
            circuits[rest] = entry["value"]
        elif kind == "chargers":
            charger_id, _, name = rest.rpartition(".")
            wiring.setdefault(charger_id, {})[name] = entry["value"]
        else:
            data[key] = entry["value"]

    tree = []
    for circuit in file.get("circuits", ()):
        changed = circuits.pop(circuit["id"], circuit)
        if changed is not None:
            tree.append(changed)
    tree += [circuits[cid] for cid in sorted(circuits) if circuits[cid] is not None]
    data["circuits"] = tree

    base_ids = {c["id"] for c in file.get("chargers", ())}
    chargers = [{**c, **wiring.get(c["id"], {})} for c in file.get("chargers", ())
                if c["id"] not in overlay.followers_removed]
    kept.followers_added = []
    in_file = {c["id"]: c for c in file.get("chargers", ())}
    for added in overlay.followers_added:
        if added.get("id") in base_ids:
            if in_file[added["id"]] != added:
                notes.append(f"follower {added.get('id')} is now in the site file; the file's entry is used")
        else:
            chargers.append(added)
            kept.followers_added.append(added)
    kept.followers_removed = [i for i in overlay.followers_removed if i in base_ids]
    for cid in kept.followers_removed:
        for name in WIRING_KEYS:
            kept.values.pop(f"chargers.{cid}.{name}", None)
    data["chargers"] = chargers
    return Composed(data, kept, tuple(notes))


def _overridden(key: str, entry: dict[str, Any], now: Any) -> str:
    """The note for a run-time value the edited site file replaces."""
    if any(isinstance(v, dict) for v in (entry.get("file"), entry.get("value"), now)):
        return f"site file changed {key}: the file's entry replaces the one set at run time"
    return (f"site file changed {key} from {entry.get('file')!r} to {now!r}: the file's value replaces the "
            f"run-time value {entry.get('value')!r}")
