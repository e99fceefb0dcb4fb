"""The MQTT topic layout and the status payloads: a public contract, documented in docs/mqtt.md.

Pure: a snapshot in, ``{topic: payload}`` out. Values are rounded to what a meter or a breaker can tell apart
(0.1 A, 1 W, 1 Wh), so a payload changes when something an operator would see changes, not with every
floating-point wobble; the face publishes a topic only when its payload differs from the last one it published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.runtime.read_model import Availability, SiteStatus, UnitStatus

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the face uses, below one prefix (``mqtt.topic_prefix``)."""

    prefix: str

    @property
    def availability(self) -> str:
        """``online`` (retained) while the gateway is connected; the broker publishes ``offline`` (the last will)
        when the connection is lost, and the gateway itself when it stops."""
        return f"{self.prefix}/availability"

    @property
    def site(self) -> str:
        return f"{self.prefix}/site"

    def unit(self, charger_id: str) -> str:
        return f"{self.prefix}/unit/{charger_id}"

    @property
    def units_wildcard(self) -> str:
        return f"{self.prefix}/unit/+"

    def unit_id(self, topic: str) -> str | None:
        """The charger id of a unit status topic, None for any other topic."""
        head = f"{self.prefix}/unit/"
        rest = topic[len(head):] if topic.startswith(head) else ""
        return rest if rest and "/" not in rest else None

    @property
    def set_network_limit(self) -> str:
        return f"{self.prefix}/set/network_limit"

    @property
    def set_enabled(self) -> str:
        return f"{self.prefix}/set/enabled"

    @property
    def set_heartbeat(self) -> str:
        return f"{self.prefix}/set/heartbeat"

    @property
    def commands(self) -> str:
        return f"{self.prefix}/set/#"

    @property
    def result(self) -> str:
        return f"{self.prefix}/result"


def _a(value: float) -> float:
    return round(value, 1)


def site_payload(status: SiteStatus) -> dict[str, Any]:
    return {
        "enabled": status.enabled,
        "installation_limit_a": _a(status.installation_limit_a),
        "network_limit_a": _a(status.network_limit_a),
        "effective_limit_a": [_a(v) for v in status.effective_limit_a],
        "limit_source": status.limit_source.name.lower(),
        "measured_a": [_a(v) for v in status.measured_a],
        "allocated_a": [_a(v) for v in status.allocated_a],
        "power_w": round(status.power_w),
        "health": status.health.name.lower(),
        "chargers": len(status.units),
        "online": status.online,
        "charging": status.charging,
        "bms_watchdog_s": status.bms_watchdog_s,
        "bms_fallback_limit_a": _a(status.bms_fallback_limit_a),
    }


def unit_payload(unit: UnitStatus) -> dict[str, Any]:
    return {
        "state": unit.state.value if unit.state is not None else "unknown",
        "availability": unit.availability.name.lower(),
        "reason": unit.unavailable_reason or ("disabled" if unit.availability is Availability.DISABLED else "none"),
        "setpoint_a": _a(unit.setpoint_a),
        "current_a": [_a(v) for v in unit.current_a],
        "power_w": round(unit.power_w),
        "session_energy_wh": round(unit.session_energy_wh),
        "energy_wh": round(unit.energy_wh) if unit.energy_wh is not None else None,
        "limit_a": _a(unit.limit_a),
        "max_current_a": _a(unit.max_current_a),
        "waiting": unit.waiting,
        "link_quality": round(unit.link.success_rate * 100),
        "error_code": unit.error_code,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def status_messages(topics: Topics, status: SiteStatus) -> dict[str, bytes]:
    """Every retained status topic of a snapshot with its payload."""
    out = {topics.site: encode(site_payload(status))}
    for unit in status.units:
        out[topics.unit(unit.id)] = encode(unit_payload(unit))
    return out
