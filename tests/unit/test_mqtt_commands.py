"""MQTT command payloads: the BMS face's rules through the BMS face's own write path, a clear answer for every
malformed payload, and nothing applied when a command is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support.bms import BASE_STATUS, FakeGateway

from gateway.faces.bms.face import BmsFace
from gateway.faces.mqtt.commands import MqttCommands
from gateway.faces.mqtt.topics import Topics
from gateway.runtime.commands import BmsHeartbeat, SetEnabled, SetNetworkLimit

T = Topics("site-a")


def commands(read_only: bool = False) -> tuple[FakeGateway, MqttCommands]:
    gateway = FakeGateway()
    return gateway, MqttCommands(BmsFace(gateway), T, read_only)


@pytest.mark.parametrize(("payload", "applied"), [
    (b"32", 32.0), (b" 12.5 ", 12.5), (b'{"value": 20}', 20.0), (b'{"value": "18.5"}', 18.5), (b"0", 0.0),
    (b"12.34", 12.3),
])
def test_a_network_limit_is_applied_and_feeds_the_bms_watchdog(payload: bytes, applied: float) -> None:
    gateway, mqtt = commands()
    result = mqtt.handle(T.set_network_limit, payload, "mqtt test")
    assert result.ok, result.message
    assert json.loads(result.payload()) == {"topic": T.set_network_limit, "ok": True, "value": applied}
    assert gateway.applied == [(SetNetworkLimit(applied), "mqtt test"), (BmsHeartbeat(), "mqtt test")]


def test_the_same_limit_again_is_only_a_heartbeat() -> None:
    gateway, mqtt = commands()
    assert mqtt.handle(T.set_network_limit, b"25", "mqtt test").ok  # already 25 A
    assert gateway.commands == [BmsHeartbeat()]


@pytest.mark.parametrize(("topic", "payload", "error"), [
    (T.set_network_limit, b"abc", "the payload is not a number of amperes"),
    (T.set_network_limit, b"-1", "at least 0"),
    (T.set_network_limit, b"nan", "finite number"),
    (T.set_network_limit, b"inf", "finite number"),
    (T.set_network_limit, b"40.1", "HR0 (network_limit): 401 is above the largest allowed value 400"),
    (T.set_network_limit, b"1e300", "65534 is above the largest allowed value 400"),
    (T.set_network_limit, b"\xff\xfe", "not UTF-8"),
    (T.set_network_limit, b"{oops", "not valid JSON"),
    (T.set_network_limit, b'{"limit": 3}', 'an object with a "value"'),
    (T.set_network_limit, b"1" * 300, "too long"),
    (T.set_network_limit, b"", "is not a number"),
    (T.set_enabled, b"maybe", "send ON or OFF"),
    ("site-a/set/unit_limit", b"3", "unknown command topic"),
])
def test_a_malformed_or_refused_command_is_answered_and_changes_nothing(topic: str, payload: bytes,
                                                                         error: str) -> None:
    gateway, mqtt = commands()
    before = gateway.status()
    result = mqtt.handle(topic, payload, "mqtt test")
    assert not result.ok
    assert error in result.message
    assert json.loads(result.payload()) == {"topic": topic, "ok": False, "error": result.message}
    assert gateway.applied == [] and gateway.status() is before


def test_a_limit_the_supervisor_refuses_changes_nothing() -> None:
    """Within the register range, but above what the one charger left could draw: a rule only the supervisor
    knows; the refusal comes back with its words."""
    gateway = FakeGateway(snapshot=replace(BASE_STATUS, units=BASE_STATUS.units[:1]))
    mqtt = MqttCommands(BmsFace(gateway), T, read_only=False)
    refused = mqtt.handle(T.set_network_limit, b"35", "mqtt test")
    assert not refused.ok and "above what the chargers could draw (32 A)" in refused.message
    assert gateway.applied == []


@pytest.mark.parametrize(("payload", "enabled"), [(b"ON", True), (b"off", False), (b"0", False), (b"true", True)])
def test_sharing_on_and_off(payload: bytes, enabled: bool) -> None:
    gateway, mqtt = commands()
    mqtt.handle(T.set_enabled, b"OFF", "mqtt test")
    gateway.applied.clear()
    result = mqtt.handle(T.set_enabled, payload, "mqtt test")
    assert result.ok and result.value is enabled
    assert gateway.commands == ([SetEnabled(True)] if enabled else [])


def test_a_heartbeat_feeds_the_watchdog_only() -> None:
    gateway, mqtt = commands()
    assert mqtt.handle(T.set_heartbeat, b"17", "mqtt test").ok
    assert gateway.applied == [(BmsHeartbeat(), "mqtt test")]


def test_read_only_refuses_every_command() -> None:
    gateway, mqtt = commands(read_only=True)
    for topic in (T.set_network_limit, T.set_enabled, T.set_heartbeat):
        result = mqtt.handle(topic, b"1", "mqtt test")
        assert not result.ok and "read-only" in result.message
    assert gateway.applied == []
