"""What a message on a command topic means, free of any MQTT transport.

A command goes through the BMS face's own write path (``BmsFace.write`` on the same holding registers), so the
network limit and sharing flag obey exactly the BMS rules: the same range (0 to the installation limit, in
0.1 A steps), a limit write that also feeds the BMS watchdog, a heartbeat topic for the watchdog, nothing
persisted when the value does not change, and ``GatewayControl.apply`` as the one door to the supervisor. A refused
command changes nothing; the face answers every command, accepted or not, on the result topic. An answer never
quotes the payload, because it is logged too and a payload can be anything someone pasted (a password).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gateway.errors import InputError
from gateway.faces.bms.face import BmsFace
from gateway.faces.bms.register_map import HEARTBEAT, NETWORK_LIMIT, SHARING_ENABLED, encode
from gateway.faces.mqtt.topics import Topics

MAX_PAYLOAD = 256
"""A command is a number or a word; anything longer is refused unread."""

_TRUE = frozenset({"on", "1", "true", "enable", "enabled"})
_FALSE = frozenset({"off", "0", "false", "disable", "disabled"})


@dataclass(frozen=True, slots=True)
class Result:
    """The answer published on the result topic."""

    topic: str
    ok: bool
    message: str
    value: Any = None

    def payload(self) -> bytes:
        body: dict[str, Any] = {"topic": self.topic, "ok": self.ok}
        if self.ok:
            body["value"] = self.value
        else:
            body["error"] = self.message
        return json.dumps(body, separators=(",", ":")).encode("utf-8")


class CommandError(InputError):
    """A payload that cannot be a command; the message says what was expected."""


class MqttCommands:
    """Turns command messages into BMS-face writes. ``read_only`` refuses them all (``mqtt.read_only``)."""

    def __init__(self, bms: BmsFace, topics: Topics, read_only: bool) -> None:
        self._bms = bms
        self._topics = topics
        self._read_only = read_only

    def handle(self, topic: str, payload: bytes, origin: str) -> Result:
        try:
            return self._handle(topic, payload, origin)
        except CommandError as exc:
            return Result(topic, False, str(exc))

    def _handle(self, topic: str, payload: bytes, origin: str) -> Result:
        t = self._topics
        if topic not in (t.set_network_limit, t.set_enabled, t.set_heartbeat):
            raise CommandError(f"unknown command topic; the commands are {t.set_network_limit}, {t.set_enabled} "
                               f"and {t.set_heartbeat}")
        if self._read_only:
            raise CommandError("the MQTT face is read-only (mqtt.read_only): no command is accepted")
        text = _text(payload)
        if topic == t.set_network_limit:
            limit = _amps(text)
            raw = encode(limit, NETWORK_LIMIT.scale)[0]
            self._write(NETWORK_LIMIT.address, raw, origin)
            return Result(topic, True, "", raw / NETWORK_LIMIT.scale)
        if topic == t.set_enabled:
            enabled = _switch(text)
            self._write(SHARING_ENABLED.address, int(enabled), origin)
            return Result(topic, True, "", enabled)
        self._write(HEARTBEAT.address, 0, origin)
        return Result(topic, True, "", None)

    def _write(self, address: int, raw: int, origin: str) -> None:
        refusal = self._bms.write(address, [raw], origin)
        if refusal is not None:
            raise CommandError(refusal.reason)


def _text(payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload of {len(payload)} bytes is too long (at most {MAX_PAYLOAD})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            raise CommandError("payload is not valid JSON") from None
        if not isinstance(body, dict) or "value" not in body:
            raise CommandError('a JSON payload must be an object with a "value"')
        text = json.dumps(body["value"]).strip('"')
    return text


def _amps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError("the payload is not a number of amperes (e.g. 32 or 32.5)") from None
    if not math.isfinite(value) or value < 0:
        raise CommandError("the network limit is a finite number of amperes, at least 0")
    return value


def _switch(text: str) -> bool:
    word = text.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CommandError("the payload is not a switch value: send ON or OFF (also 1/0, true/false)")
