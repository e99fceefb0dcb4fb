"""Which idTags may charge without asking the central system: the site's local list and the authorisation cache.

The local list comes from the site file (the gateway does not implement the Local Auth List Management profile).
The cache remembers every idTagInfo the central system sent (Authorize.conf, StartTransaction.conf,
StopTransaction.conf), with its expiry; ClearCache empties it (spec §3.4, §5.4). ``decide`` is the rule that
turns what is known locally, and the central system's answer if there is one, into yes or no.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.ocpp.meter_values import parse_time

ACCEPTED = "Accepted"
CACHE_SIZE = 1000
"""The oldest entries go first beyond this."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    status: str
    expiry_s: float | None = None


class LocalAuthorization:
    def __init__(self, local_list: Iterable[str] = (), cache: Mapping[str, CacheEntry] | None = None) -> None:
        self.local_list = frozenset(local_list)
        self._cache = dict(cache or {})

    def lookup(self, id_tag: str, now: float) -> str | None:
        """The status known locally (``Accepted``, ``Blocked``, ``Expired``, ``Invalid``...), or None if unknown."""
        if id_tag in self.local_list:
            return ACCEPTED
        entry = self._cache.get(id_tag)
        if entry is None:
            return None
        if entry.status == ACCEPTED and entry.expiry_s is not None and now >= entry.expiry_s:
            return "Expired"
        return entry.status

    def remember(self, id_tag: str, id_tag_info: Mapping[str, Any]) -> None:
        """Store an idTagInfo from the central system (already schema-checked)."""
        expiry = id_tag_info.get("expiryDate")
        try:
            expiry_s = parse_time(expiry) if isinstance(expiry, str) else None
        except ValueError:
            expiry_s = None
        self._cache.pop(id_tag, None)
        self._cache[id_tag] = CacheEntry(str(id_tag_info.get("status")), expiry_s)
        while len(self._cache) > CACHE_SIZE:
            del self._cache[next(iter(self._cache))]

    def clear_cache(self) -> None:
        self._cache.clear()

    def to_json(self) -> dict[str, Any]:
        return {tag: {"status": e.status, "expiry_s": e.expiry_s} for tag, e in self._cache.items()}

    @classmethod
    def from_json(cls, local_list: Iterable[str], data: object) -> LocalAuthorization:
        if not isinstance(data, dict):
            raise ValueError("authorisation cache: expected an object")
        cache = {}
        for tag, raw in data.items():
            if not isinstance(raw, dict) or not isinstance(raw.get("status"), str):
                raise ValueError(f"authorisation cache: entry {tag!r} is malformed")
            expiry = raw.get("expiry_s")
            cache[str(tag)] = CacheEntry(raw["status"], float(expiry) if expiry is not None else None)
        return cls(local_list, cache)


def decide(local: str | None, central: str | None, *, pre_authorize: bool, offline_authorize: bool,
           allow_unknown_offline: bool) -> bool:
    """May the idTag charge?

    ``local``: the status known locally (``lookup``); ``central``: the central system's answer, None if it could not
    be asked (offline, no answer, an error).

    * LocalPreAuthorize: a locally accepted idTag starts at once;
    * online: the central system decides;
    * offline: LocalAuthorizeOffline lets a locally known idTag use its local status; an unknown idTag charges only
      with AllowOfflineTxForUnknownId.
    """
    if pre_authorize and local == ACCEPTED:
        return True
    if central is not None:
        return central == ACCEPTED
    if local is not None:
        return offline_authorize and local == ACCEPTED
    return allow_unknown_offline
