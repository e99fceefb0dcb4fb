"""The OCPP 1.6 configuration keys the gateway reports and accepts (GetConfiguration / ChangeConfiguration).

``KEYS`` is the table: the Core keys spec §9.1 requires, the Smart Charging keys of §9.4, and a few optional
ones worth exposing. Values travel as strings, as in OCPP. ``Configuration`` holds the values: read-only ones
the gateway supplies at start (e.g. ``NumberOfConnectors`` from the site file), writable ones the central system
may change; only the changed writable values are persisted, so a new release's defaults reach keys nobody set.

Deviation, on purpose: ``ConnectorPhaseRotation`` is read-only here. The wiring is in the site file and the
gateway's phase accounting depends on it; a central system must not be able to rewrite it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.errors import StateError
from gateway.faces.ocpp.charging_profile import RateUnit
from gateway.faces.ocpp.measurands import ENERGY, MEASURANDS
from gateway.faces.ocpp.smart_charging import ProfileRules
from gateway.site.config import SiteConfig


class ValueType(StrEnum):
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "comma-separated list"
    TEXT = "text"


class ChangeStatus(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


_RATE_UNIT_NAMES = {"Current": RateUnit.A, "Power": RateUnit.W}  # errata §3.88
_INT = re.compile(r"^-?[0-9]+$")
MAX_VALUE_LENGTH = 500
"""ChangeConfiguration.req's value is at most 500 characters (schema)."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    readonly: bool
    type: ValueType
    default: str
    reboot_required: bool = False
    """A change is stored at once but only applies after a restart or reconnection (answered RebootRequired)."""
    minimum: int | None = None
    maximum: int | None = None
    items: frozenset[str] | None = None
    """For lists: the allowed entries."""
    max_items_key: str | None = None
    """For lists: the key holding the most entries allowed."""
    description: str = ""

    def problem(self, value: str, config: Configuration | None = None) -> str | None:
        """Why ``value`` is not acceptable for this key, or None."""
        if len(value) > MAX_VALUE_LENGTH:
            return f"longer than {MAX_VALUE_LENGTH} characters"
        if self.type is ValueType.INTEGER:
            if not _INT.match(value.strip()):
                return f"{value!r} is not a whole number"
            number = int(value)
            if self.minimum is not None and number < self.minimum:
                return f"{number} is below {self.minimum}"
            if self.maximum is not None and number > self.maximum:
                return f"{number} is above {self.maximum}"
        elif self.type is ValueType.BOOLEAN:
            if value.strip().lower() not in ("true", "false"):
                return f"{value!r} is not true or false"
        elif self.type is ValueType.LIST:
            entries = split_list(value)
            if self.items is not None:
                unknown = [e for e in entries if e not in self.items]
                if unknown:
                    return f"not supported: {', '.join(unknown)}"
            if len(set(entries)) != len(entries):
                return "an entry is repeated"
            if self.max_items_key is not None and config is not None:
                most = config.integer(self.max_items_key)
                if len(entries) > most:
                    return f"{len(entries)} entries; at most {most} ({self.max_items_key})"
        return None

    def normalise(self, value: str) -> str:
        if self.type is ValueType.INTEGER:
            return str(int(value))
        if self.type is ValueType.BOOLEAN:
            return value.strip().lower()
        if self.type is ValueType.LIST:
            return ",".join(split_list(value))
        return value


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _rw_int(name: str, default: int, maximum: int, description: str, *, reboot: bool = False) -> KeySpec:
    return KeySpec(name, False, ValueType.INTEGER, str(default), reboot, 0, maximum, description=description)


def _ro_int(name: str, default: int, description: str) -> KeySpec:
    return KeySpec(name, True, ValueType.INTEGER, str(default), minimum=0, description=description)


def _bool(name: str, default: bool, description: str, *, readonly: bool = False) -> KeySpec:
    return KeySpec(name, readonly, ValueType.BOOLEAN, "true" if default else "false", description=description)


def _measurands(name: str, default: str, max_key: str, description: str) -> KeySpec:
    return KeySpec(name, False, ValueType.LIST, default, items=MEASURANDS, max_items_key=max_key,
                   description=description)


SAMPLED_DEFAULT = f"{ENERGY},Power.Active.Import,Current.Import,Current.Offered"
KEYS: tuple[KeySpec, ...] = (
    # Core profile (spec §9.1)
    _bool("AllowOfflineTxForUnknownId", False, "start transactions offline for unknown idTags"),
    _bool("AuthorizeRemoteTxRequests", False, "send Authorize before a remotely started transaction"),
    _rw_int("ClockAlignedDataInterval", 900, 86_400, "s between clock-aligned meter values (0: off)"),
    _rw_int("ConnectionTimeOut", 60, 3600, "s to wait for a car after authorisation"),
    KeySpec("ConnectorPhaseRotation", True, ValueType.LIST, "0.RST", description="wiring of each connector, "
            "from the site file"),
    _ro_int("GetConfigurationMaxKeys", 50, "most keys in one GetConfiguration.req"),
    _rw_int("HeartbeatInterval", 300, 86_400, "s between heartbeats when idle"),
    _bool("LocalAuthorizeOffline", True, "authorise known idTags while offline"),
    _bool("LocalPreAuthorize", False, "start at once for locally known idTags, before Authorize.conf"),
    _measurands("MeterValuesAlignedData", ENERGY, "MeterValuesAlignedDataMaxLength",
                "measurands sent at each clock-aligned interval"),
    _ro_int("MeterValuesAlignedDataMaxLength", 8, "most entries in MeterValuesAlignedData"),
    _measurands("MeterValuesSampledData", SAMPLED_DEFAULT, "MeterValuesSampledDataMaxLength",
                "measurands sampled during a transaction"),
    _ro_int("MeterValuesSampledDataMaxLength", 8, "most entries in MeterValuesSampledData"),
    _rw_int("MeterValueSampleInterval", 60, 86_400, "s between sampled meter values in a transaction (0: off)"),
    _rw_int("MinimumStatusDuration", 0, 3600, "s a status must last before it is reported"),
    _ro_int("NumberOfConnectors", 1, "connectors = chargers of the site"),
    _rw_int("ResetRetries", 1, 10, "times to retry a failed reset"),
    _bool("StopTransactionOnEVSideDisconnect", True, "stop the transaction when the cable is unplugged at the car"),
    _bool("StopTransactionOnInvalidId", True, "stop when StartTransaction.conf refuses an offline-authorised idTag"),
    _measurands("StopTxnAlignedData", "", "StopTxnAlignedDataMaxLength",
                "clock-aligned measurands in StopTransaction.req"),
    _ro_int("StopTxnAlignedDataMaxLength", 8, "most entries in StopTxnAlignedData"),
    _measurands("StopTxnSampledData", "", "StopTxnSampledDataMaxLength", "sampled measurands in StopTransaction.req"),
    _ro_int("StopTxnSampledDataMaxLength", 8, "most entries in StopTxnSampledData"),
    KeySpec("SupportedFeatureProfiles", True, ValueType.LIST, "Core,SmartCharging,RemoteTrigger",
            description="feature profiles implemented"),
    _rw_int("TransactionMessageAttempts", 3, 100, "tries for a transaction message the central system refuses"),
    _rw_int("TransactionMessageRetryInterval", 60, 86_400, "s before retry k (times k) of a refused message"),
    _bool("UnlockConnectorOnEVSideDisconnect", False, "the gateway cannot unlock a charger's cable",
          readonly=True),
    _rw_int("WebSocketPingInterval", 60, 3600, "s between WebSocket pings (0: off); applies from the next "
            "connection", reboot=True),
    # Smart Charging profile (spec §9.4)
    _ro_int("ChargeProfileMaxStackLevel", 8, "highest stackLevel accepted"),
    KeySpec("ChargingScheduleAllowedChargingRateUnit", True, ValueType.LIST, "Current,Power",
            items=frozenset(_RATE_UNIT_NAMES), description="units accepted in schedules"),
    _ro_int("ChargingScheduleMaxPeriods", 24, "most periods in one schedule"),
    _bool("ConnectorSwitch3to1PhaseSupported", False, "can switch a transaction from 3 to 1 phase", readonly=True),
    _ro_int("MaxChargingProfilesInstalled", 32, "most profiles installed at once"),
)
SPECS: Mapping[str, KeySpec] = {spec.name: spec for spec in KEYS}


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    readonly: bool
    value: str


class ConfigurationStateError(StateError):
    """Persisted or supplied values that break the table's rules."""


class Configuration:
    """Current values of every key in ``KEYS``."""

    def __init__(self, fixed: Mapping[str, str] | None = None, changed: Mapping[str, str] | None = None,
                 defaults: Mapping[str, str] | None = None) -> None:
        """``fixed``: read-only values the gateway knows (``NumberOfConnectors``, ``ConnectorPhaseRotation``).
        ``changed``: writable values set earlier by the central system (what ``to_json`` saved).
        ``defaults``: writable values the site file chose; the central system's changes win over them, and they are
        not persisted, so an edit of the site file reaches every key the central system has not set."""
        self._values = {spec.name: spec.default for spec in KEYS}
        self._changed: dict[str, str] = {}
        for source, values, readonly in (("fixed", fixed or {}, True), ("site file", defaults or {}, False),
                                         ("changed", changed or {}, False)):
            for name, value in values.items():
                spec = SPECS.get(name)
                if spec is None or spec.readonly != readonly:
                    raise ConfigurationStateError(f"{source}: {name} is not a {'read-only' if readonly else 'writable'}"
                                                  " configuration key")
                self._set(spec, value, source)
        self._changed = {name: self._values[name] for name in (changed or {})}
        for spec in KEYS:
            problem = spec.problem(self._values[spec.name], self)
            if problem is not None:
                raise ConfigurationStateError(f"{spec.name}: {problem}")

    def _set(self, spec: KeySpec, value: str, source: str) -> None:
        problem = spec.problem(value)
        if problem is not None:
            raise ConfigurationStateError(f"{source}: {spec.name}: {problem}")
        self._values[spec.name] = spec.normalise(value)

    @classmethod
    def for_site(cls, site: SiteConfig, changed: Mapping[str, str] | None = None,
                 defaults: Mapping[str, str] | None = None) -> Configuration:
        return cls({"NumberOfConnectors": str(len(site.chargers)),
                    "ConnectorPhaseRotation": connector_phase_rotation(site)}, changed, defaults)

    def value(self, name: str) -> str:
        return self._values[name]

    def integer(self, name: str) -> int:
        return int(self._values[name])

    def boolean(self, name: str) -> bool:
        return self._values[name] == "true"

    def entries(self, name: str) -> list[str]:
        return split_list(self._values[name])

    def get(self, keys: Sequence[str] | None = None) -> tuple[list[KeyValue], list[str]]:
        """GetConfiguration (spec §5.8): (known keys with values, unknown keys). No keys asked: all of them."""
        names = [spec.name for spec in KEYS] if not keys else list(dict.fromkeys(keys))
        known = [KeyValue(n, SPECS[n].readonly, self._values[n]) for n in names if n in SPECS]
        return known, [n for n in names if n not in SPECS]

    def get_payload(self, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """GetConfiguration.conf in OCPP JSON."""
        known, unknown = self.get(keys)
        out: dict[str, Any] = {"configurationKey": [{"key": k.key, "readonly": k.readonly, "value": k.value}
                                                    for k in known]}
        if unknown:
            out["unknownKey"] = unknown
        return out

    def change(self, key: str, value: str) -> tuple[ChangeStatus, str | None]:
        """ChangeConfiguration (spec §5.3): (status, reason). A refused value changes nothing."""
        spec = SPECS.get(key)
        if spec is None:
            return ChangeStatus.NOT_SUPPORTED, f"unknown key {key!r}"
        if spec.readonly:
            return ChangeStatus.REJECTED, f"{key} is read-only"
        problem = spec.problem(value, self)
        if problem is not None:
            return ChangeStatus.REJECTED, f"{key}: {problem}"
        self._values[key] = spec.normalise(value)
        self._changed[key] = self._values[key]
        return (ChangeStatus.REBOOT_REQUIRED if spec.reboot_required else ChangeStatus.ACCEPTED), None

    def changed(self) -> dict[str, str]:
        """The writable values the central system changed (what ``to_json`` holds)."""
        return dict(self._changed)

    def to_json(self) -> str:
        """The writable values the central system changed, for the gateway to persist atomically."""
        return json.dumps({"version": 1, "changed": self._changed}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, fixed: Mapping[str, str] | None = None,
                  defaults: Mapping[str, str] | None = None) -> Configuration:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationStateError(f"not JSON: {exc}") from None
        changed = data.get("changed") if isinstance(data, dict) and data.get("version") == 1 else None
        if not isinstance(changed, dict) or not all(isinstance(v, str) for v in changed.values()):
            raise ConfigurationStateError("expected {\"version\": 1, \"changed\": {key: string value}}")
        return cls(fixed, changed, defaults)

    def profile_rules(self) -> ProfileRules:
        """What SetChargingProfile checks against."""
        return ProfileRules(
            number_of_connectors=self.integer("NumberOfConnectors"),
            max_stack_level=self.integer("ChargeProfileMaxStackLevel"),
            max_periods=self.integer("ChargingScheduleMaxPeriods"),
            allowed_units=frozenset(_RATE_UNIT_NAMES[n] for n in self.entries("ChargingScheduleAllowedChargingRate"
                                                                                "Unit")),
            max_profiles=self.integer("MaxChargingProfilesInstalled"))


def connector_phase_rotation(site: SiteConfig) -> str:
    """``ConnectorPhaseRotation`` from the site's wiring: L1, L2, L3 are R, S, T; 1-phase chargers are
    NotApplicable (spec §9.1.6)."""
    parts = ["0.RST"]
    for index, charger in enumerate(site.chargers, start=1):
        if charger.phases == 1:
            parts.append(f"{index}.NotApplicable")
        else:
            letters = "".join("RST"[p] for p in charger.site_phases)
            parts.append(f"{index}.{letters}")
    return ",".join(parts)
