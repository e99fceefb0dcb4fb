"""Home Assistant MQTT discovery: the site and every charger as devices with their sensors and controls.

Pure: a snapshot in, ``{discovery topic: config payload}`` out. Each entity has its own retained config at
``<discovery prefix>/<component>/<node>/<object>/config`` (HA's per-entity discovery); the entities read the
status topics of ``gateway.faces.mqtt.topics`` through value templates, so discovery adds no message per step.
A charger's entities are removed by an empty retained config on each of its topics, which the face publishes when
the charger leaves the site.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from drivers.model import Iec61851State
from gateway import __version__
from gateway.faces.mqtt.topics import OFFLINE, ONLINE, Topics
from gateway.runtime.read_model import SiteStatus, UnitStatus

_OBJECT_ID = re.compile(r"[^A-Za-z0-9_-]")
UNIT_STATES = [s.value for s in Iec61851State] + ["unknown"]


@dataclass(frozen=True, slots=True)
class Discovery:
    topics: Topics
    prefix: str
    """``mqtt.discovery_prefix``, "homeassistant" by default."""
    node: str
    """``mqtt.client_id``: names this gateway in topics and unique ids."""
    site_name: str

    @property
    def subscription(self) -> str:
        """Every config this gateway may have published (to clear those of chargers gone while it was away)."""
        return f"{self.prefix}/+/{self.node}/+/config"

    def is_ours(self, topic: str) -> bool:
        parts = topic.split("/")
        return (len(parts) == len(self.prefix.split("/")) + 4 and topic.startswith(self.prefix + "/")
                and parts[-3] == self.node and parts[-1] == "config")

    @property
    def site_device(self) -> dict[str, Any]:
        return {"identifiers": [f"powershare_{self.node}"], "name": self.site_name, "manufacturer": "powershare",
                "model": "power-sharing gateway", "sw_version": __version__}

    def unit_device(self, charger_id: str) -> dict[str, Any]:
        return {"identifiers": [f"powershare_{self.node}_{_object(charger_id)}"], "name": f"Charger {charger_id}",
                "manufacturer": "powershare", "model": "charger (follower)",
                "via_device": f"powershare_{self.node}"}

    def messages(self, status: SiteStatus) -> dict[str, bytes]:
        """Every config of the site and its chargers."""
        out = self.site_configs(status)
        for unit in status.units:
            out.update(self.unit_configs(unit))
        return out

    def site_configs(self, status: SiteStatus) -> dict[str, bytes]:
        t = self.topics
        entities: list[tuple[str, str, dict[str, Any]]] = [
            *(("sensor", f"site_current_l{p + 1}",
               _current(f"Current L{p + 1}", t.site, f"value_json.measured_a[{p}]")) for p in range(3)),
            *(("sensor", f"site_booked_l{p + 1}",
               _current(f"Booked current L{p + 1}", t.site, f"value_json.allocated_a[{p}]")) for p in range(3)),
            ("sensor", "site_effective_limit",
             _current("Effective limit", t.site, "value_json.effective_limit_a | min")),
            ("sensor", "site_power", _power(t.site)),
            ("sensor", "site_state", _enum("State", t.site, "value_json.health", ["ok", "degraded", "fault"])),
            ("sensor", "site_limit_source", _enum("Limit source", t.site, "value_json.limit_source",
                                                   ["installation", "network", "bms_fallback", "ocpp",
                                                    "site_meter", "bms"])),
            ("sensor", "site_online", {"name": "Chargers online", "state_topic": t.site,
                                       "value_template": "{{ value_json.online }}", "state_class": "measurement"}),
            ("number", "site_network_limit", {
                "name": "Network limit", "command_topic": t.set_network_limit, "state_topic": t.site,
                "value_template": "{{ value_json.network_limit_a }}", "min": 0,
                "max": status.installation_limit_a, "step": 0.1, "mode": "box", "device_class": "current",
                "unit_of_measurement": "A"}),
            ("switch", "site_sharing", {
                "name": "Sharing", "command_topic": t.set_enabled, "state_topic": t.site,
                "value_template": "{{ 'ON' if value_json.enabled else 'OFF' }}", "payload_on": "ON",
                "payload_off": "OFF", "state_on": "ON", "state_off": "OFF"}),
        ]
        return {self._topic(component, obj): self._config(obj, self.site_device, body)
                for component, obj, body in entities}

    def unit_configs(self, unit: UnitStatus) -> dict[str, bytes]:
        return {topic: self._config(obj, self.unit_device(unit.id), body)
                for topic, obj, body in self._unit_entities(unit.id)}

    def unit_topics(self, charger_id: str) -> list[str]:
        """The config topics of a charger's entities (to clear them when it leaves)."""
        return [topic for topic, _, _ in self._unit_entities(charger_id)]

    def _unit_entities(self, charger_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        state = self.topics.unit(charger_id)
        key = f"unit_{_object(charger_id)}"
        entities: list[tuple[str, dict[str, Any]]] = [
            *((f"{key}_current_l{p + 1}", _current(f"Current L{p + 1}", state, f"value_json.current_a[{p}]"))
              for p in range(3)),
            (f"{key}_setpoint", _current("Setpoint", state, "value_json.setpoint_a")),
            (f"{key}_power", _power(state)),
            (f"{key}_session_energy", _energy("Session energy", state, "value_json.session_energy_wh")),
            (f"{key}_energy", _energy("Energy", state, "value_json.energy_wh")),
            (f"{key}_state", _enum("State", state, "value_json.state", UNIT_STATES)),
            (f"{key}_availability", _enum("Availability", state, "value_json.availability",
                                          ["available", "unavailable", "disabled"])),
            (f"{key}_reason", {"name": "Availability reason", "state_topic": state,
                               "value_template": "{{ value_json.reason }}", "entity_category": "diagnostic"}),
            (f"{key}_link_quality", {"name": "Link quality", "state_topic": state,
                                     "value_template": "{{ value_json.link_quality }}", "unit_of_measurement": "%",
                                     "state_class": "measurement", "entity_category": "diagnostic"}),
        ]
        return [(self._topic("sensor", obj), obj, body) for obj, body in entities]

    def _topic(self, component: str, obj: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{obj}/config"

    def _config(self, obj: str, device: dict[str, Any], body: dict[str, Any]) -> bytes:
        config = {**body, "unique_id": f"powershare_{self.node}_{obj}", "device": device,
                  "availability": [{"topic": self.topics.availability, "payload_available": ONLINE,
                                    "payload_not_available": OFFLINE}],
                  "origin": {"name": "powershare", "sw_version": __version__}}
        return json.dumps(config, separators=(",", ":")).encode("utf-8")


def _object(charger_id: str) -> str:
    """A charger id as an HA object id (letters, digits, ``_``, ``-``): a dot becomes ``_2e`` (its code)."""
    return _OBJECT_ID.sub(lambda m: f"_{ord(m.group()):x}", charger_id)


def _current(name: str, topic: str, value: str) -> dict[str, Any]:
    return {"name": name, "state_topic": topic, "value_template": f"{{{{ {value} }}}}", "device_class": "current",
            "unit_of_measurement": "A", "state_class": "measurement", "suggested_display_precision": 1}


def _power(topic: str) -> dict[str, Any]:
    return {"name": "Power", "state_topic": topic, "value_template": "{{ value_json.power_w }}",
            "device_class": "power", "unit_of_measurement": "W", "state_class": "measurement"}


def _energy(name: str, topic: str, value: str) -> dict[str, Any]:
    return {"name": name, "state_topic": topic, "value_template": f"{{{{ {value} }}}}", "device_class": "energy",
            "unit_of_measurement": "Wh", "state_class": "total_increasing"}


def _enum(name: str, topic: str, value: str, options: list[str]) -> dict[str, Any]:
    return {"name": name, "state_topic": topic, "value_template": f"{{{{ {value} }}}}", "device_class": "enum",
            "options": options}
